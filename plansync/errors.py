"""The errors plansync expects, in one hierarchy.

Every expected failure is a ``PlansyncError``: one sentence of what happened and,
where there is one, a hint of what to do. The CLI prints them without a traceback
and exits 1; anything else is a bug.

    PlansyncError                 exit code 1 unless the class says otherwise
    ├── GuardrailError            a plan exceeds a limit; nothing was sent (exit code 3)
    ├── LockError                 the state is locked by another run, or the lock cannot be had
    │   ├── LockLostError         this run's lock was taken over: it writes nothing more
    │   └── HolderAliveError      force-unlock of a holder that shows signs of life
    ├── HeldBack                  a write kept from leaving at the last moment (stop, lost lock)
    ├── SpecProblemsError         the specs have problems (each in ``problems``); nothing was done
    ├── ConfigError               a setting is missing or wrong
    │   └── KeyFileError          a key file cannot be used (names the file)
    └── GatewayError              talking to the gateway failed for one request
        ├── TransportError        the request did not get an answer (retryable or not)
        ├── OutcomeUnknownError   an update/cancel was sent and its answer was lost
        ├── EnvelopeError         the JWS/JWE envelope is refused (signature, algorithm, decrypt)
        ├── MessageError          the XML inside is malformed or unsafe
        └── GatewayRejectedError  the gateway answered with a respCode other than 00
            ├── PlanNotFoundError          16
            ├── MerchantRejectedError      03, 14
            ├── RequestRejectedError       02, 04, 05, 10, 11, 15, 17, 18
            ├── StatusNotValidError        12
            ├── CancelRefusedError         61, 65
            └── GatewayUnavailableError    95, 96, 97, 98, 99 (and 01, 13: see codes.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plansync.spec.model import Problem


class PlansyncError(Exception):
    """An expected failure, reported to the user as a sentence and a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


class GuardrailError(PlansyncError):
    exit_code = 3


class LockError(PlansyncError):
    def __init__(self, message: str, hint: str | None = None,
                 held_by: str | None = None) -> None:
        super().__init__(message, hint)
        self.held_by = held_by  # the lock id of the run that holds it, when known


class LockLostError(LockError):
    """This run can no longer prove it holds the state's lock (it was taken over, broken
    with force-unlock, or not renewed in time): it sends no write and stores nothing more."""


class HolderAliveError(LockError):
    """A lock whose holder shows signs of life is not broken without being told to."""


class HeldBack(PlansyncError):
    """A write kept from leaving at the last moment before it would have: the run was
    stopped, lost its lock, or the write waited too long to leave. Known never sent."""


class SpecProblemsError(PlansyncError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the specs; nothing was done",
                         "fix them and run again (plansync validate checks without network)")
        self.problems = list(problems)


class ConfigError(PlansyncError):
    pass


class KeyFileError(ConfigError):
    pass


class GatewayError(PlansyncError):
    pass


class TransportError(GatewayError):
    """No usable answer arrived. ``retryable`` is true when sending again is safe:
    an inquiry, or a write that is known not to have left this machine."""

    def __init__(self, message: str, hint: str | None = None, *, retryable: bool,
                 retry_after: float | None = None, systemic: bool = False,
                 unanswered: bool = False) -> None:
        super().__init__(message, hint)
        self.retryable = retryable
        self.retry_after = retry_after
        self.systemic = systemic or unanswered  # would fail alike for every plan (TLS...)
        self.unanswered = unanswered  # sent, and no answer came in time


class OutcomeUnknownError(GatewayError):
    """An update or cancel left this machine and its answer was lost. The gateway may
    or may not have applied it; only an inquiry can tell. Never retry it blindly."""

    def __init__(self, message: str, hint: str | None = None, *,
                 unanswered: bool = False) -> None:
        super().__init__(message, hint)
        self.unanswered = unanswered  # no complete answer came (not an unusable one)


class EnvelopeError(GatewayError):
    pass


class MessageError(GatewayError):
    pass


class GatewayRejectedError(GatewayError):
    """The gateway answered with a respCode other than 00."""

    def __init__(self, code: str, reason: str, meaning: str, hint: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(f"gateway answered {code} {meaning}{detail}", hint)
        self.code = code
        self.reason = reason


class PlanNotFoundError(GatewayRejectedError):
    pass


class MerchantRejectedError(GatewayRejectedError):
    pass


class RequestRejectedError(GatewayRejectedError):
    pass


class StatusNotValidError(GatewayRejectedError):
    pass


class CancelRefusedError(GatewayRejectedError):
    pass


class GatewayUnavailableError(GatewayRejectedError):
    pass
