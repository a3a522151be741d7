"""2C2P Payment Action result codes, and the error each non-00 answer becomes."""

from __future__ import annotations

from typing import NamedTuple

from plansync import errors
from plansync.gateway import assumptions


class ResultCode(NamedTuple):
    meaning: str
    error: type[errors.GatewayRejectedError]
    hint: str | None = None


SUCCESS = assumptions.SUCCESS_CODE

RESULT_CODES: dict[str, ResultCode] = {
    "01": ResultCode("stored card not found", errors.GatewayUnavailableError,
                     "the card behind this plan is gone; ask 2C2P support"),
    "02": ResultCode("invalid request", errors.RequestRejectedError),
    "03": ResultCode("invalid merchant", errors.MerchantRejectedError,
                     "check merchant_id, and that this merchant is enabled for this endpoint"),
    "04": ResultCode("invalid stored card unique id", errors.RequestRejectedError,
                     "the card behind this plan is not known to 2C2P; ask 2C2P support"),
    "05": ResultCode("invalid customer email", errors.RequestRejectedError,
                     "the plan's customer email is not valid; correct it at 2C2P"),
    "10": ResultCode("missing compulsory values", errors.RequestRejectedError),
    "11": ResultCode("request validation failed", errors.RequestRejectedError,
                     "a field is malformed or out of range"),
    "12": ResultCode("status not valid for the action", errors.StatusNotValidError,
                     "the plan may already be cancelled"),
    "13": ResultCode("invalid hash", errors.GatewayUnavailableError,
                     "the gateway could not check the request's signature; check merchant_key"),
    "14": ResultCode("invalid merchant", errors.MerchantRejectedError,
                     "check merchant_id, and that this merchant is enabled for this endpoint"),
    "15": ResultCode("invalid invoice number", errors.RequestRejectedError,
                     "the plan's invoice prefix is not valid; ask 2C2P support"),
    "16": ResultCode("transaction does not exist", errors.PlanNotFoundError,
                     "check the plan id (recurringUniqueID) and merchant_id"),
    "17": ResultCode("invalid request type", errors.RequestRejectedError),
    "18": ResultCode("invalid action amount", errors.RequestRejectedError),
    "61": ResultCode("cancel not allowed", errors.CancelRefusedError),
    "65": ResultCode("cancel failed", errors.CancelRefusedError),
    "95": ResultCode("request timed out", errors.GatewayUnavailableError, "try again later"),
    "96": ResultCode("unable to decrypt", errors.GatewayUnavailableError,
                     assumptions.UNREADABLE_REQUEST_HINT),
    "97": ResultCode("process not supported", errors.GatewayUnavailableError),
    "98": ResultCode("request not available", errors.GatewayUnavailableError, "try again later"),
    "99": ResultCode("unable to complete", errors.GatewayUnavailableError, "try again later"),
}

# Answers that say the gateway did nothing and may succeed if asked again.
RETRYABLE_CODES = frozenset({"95", "98"})


def rejection(code: str, reason: str) -> errors.GatewayRejectedError:
    """The specific error for a non-00 answer, carrying the gateway's own reason."""
    known = RESULT_CODES.get(code)
    if known is None:
        return errors.GatewayRejectedError(code, reason, "unknown result code")
    return known.error(code, reason, known.meaning, known.hint)
