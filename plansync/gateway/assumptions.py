"""Gateway assumptions: what plansync decides where 2C2P's documentation is silent.

Each entry says whether it is documented (with the documented facts it leans on), half
documented, or not documented at all and so chosen here. Each can be corrected against
the real sandbox in one edit of this module.
"""

from __future__ import annotations

from typing import Final

# Documented: the two hosts. Named here so that the rest of the code never spells them.
ENDPOINTS: Final = {
    "sandbox": "https://demo2.2c2p.com/2C2PFrontend/PaymentAction/2.0/action",
    "production": "https://t.2c2p.com/PaymentAction/2.0/action",
}

# Documented: requests carry version 2.4 (chargeOnDate exists only there).
REQUEST_VERSION: Final = "2.4"

# Not documented: whether an update must carry every field. The sample sends the whole
# record, so an update carries the complete target record (desired over live values).
UPDATE_SENDS_COMPLETE_RECORD: Final = True

# Half documented: what a cancel carries besides the compulsory fields. The guide's cancel
# sample also sends recurringStatus, amount and allowAccumulate (the plan's values as they
# are); whether the gateway needs them is not said. Sent as the sample does, from the
# live record inquired just before. () sends only the compulsory fields.
CANCEL_CARRIES: Final = ("recurringStatus", "amount", "allowAccumulate")

# Not documented: how inquiry shows a cancelled plan. Assumed: recurringStatus N (read as
# "inactive"), indistinguishable from paused; update/cancel of it answers 12 (which the
# applier counts as "already cancelled"). The state file therefore remembers
# cancellations plansync made.
CANCELLED_PLAN_INQUIRES_AS: Final = "inactive"

# Not documented: what a write of an already cancelled plan answers. Assumed 12 (status not
# valid for the action), but a gateway may well answer 16 (transaction does not exist) if
# it looks plans up among the live ones; 2C2P says neither. Seen on a cancel, either
# answer is only a hint: the applier then inquires, and counts the plan cancelled when
# it inquires as CANCELLED_PLAN_INQUIRES_AS or is not found (16) — it was found just
# before the cancel was sent — and never on the answer alone. This is how a cancel whose
# first answer was lost or refused (though it committed) converges on a re-run. The
# emulator answers 16 here with `--cancelled-write-code 16`.
CANCELLED_PLAN_WRITE_ANSWERS: Final = ("12", "16")

# Not documented: how a gateway that cannot verify or decrypt our request answers.
# Assumed: a non-2xx status with a short plain-text body (or a body that is no token).
UNREADABLE_REQUEST_HINT: Final = (
    "the gateway could not read the request: check that merchant_key is the key whose "
    "public half is registered with 2C2P, that gateway_key is 2C2P's certificate for "
    "this endpoint (sandbox and production differ), and that the system clock is right"
)

# Half documented: which members bind an answer to its request. Every sample answer
# echoes the request's timeStamp and recurringUniqueID; only the inquiry sample names the
# merchantID (the update and cancel samples do not). There is no sample of a refusal.
# A success (00) must carry the members listed for its process type, and every answer
# must match the request in each binding member it carries.
SUCCESS_CODE: Final = "00"
ANSWER_MUST_NAME: Final = {
    "I": ("merchantID", "recurringUniqueID"),
    "U": ("recurringUniqueID",),
    "C": ("recurringUniqueID",),
}
ANSWER_BINDING: Final = ("merchantID", "recurringUniqueID", "timeStamp")

# Not documented: the largest answer a single plan's message can reasonably need.
MAX_TOKEN_BYTES: Final = 64 * 1024
MAX_XML_BYTES: Final = 16 * 1024
