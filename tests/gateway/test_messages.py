import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from plansync.errors import MessageError
from plansync.fields import PlanFields
from plansync.gateway import messages
from tests.helpers import SAMPLE_INQUIRY_ANSWER

WHEN = datetime(2021, 3, 5, 9, 13, 14, tzinfo=UTC)


def test_the_documented_inquiry_answer_reads_as_typed_values() -> None:
    plan = messages.live_plan(messages.read_response(SAMPLE_INQUIRY_ANSWER))
    assert plan.id == "156142"
    assert plan.status == "active"
    assert plan.amount == Decimal("99.90") and isinstance(plan.amount, Decimal)
    assert plan.currency == "SGD"
    assert plan.allow_accumulate is False
    assert plan.max_accumulate_amount == Decimal("10.00")
    assert (plan.recurring_interval, plan.recurring_count, plan.current_count) == (30, 12, None)
    assert plan.charge_next_date == date(2021, 3, 7)
    assert plan.invoice_prefix == "030321135205"
    assert plan.masked_card_no == "XXXXXXXXXXXX1111"


def sent(write: messages.Write) -> dict[str, str]:
    """The request a write makes, as the client builds it, read back."""
    xml = messages.build_xml(messages.REQUEST_ROOT, messages.request_items(
        "JT01", write.plan_id, write.process_type, WHEN, write.carried))
    return messages.parse_flat(xml, messages.REQUEST_ROOT)


def test_update_request_matches_the_documented_sample() -> None:
    write = messages.update_write("156142", PlanFields(
        status="active", amount=Decimal("99.90"), allow_accumulate=False,
        recurring_interval=30, recurring_count=24), exponent=2)
    assert sent(write) == {
        "version": "2.4", "timeStamp": "050321091314", "merchantID": "JT01",
        "recurringUniqueID": "156142", "processType": "U", "recurringStatus": "Y",
        "amount": "000000009990", "allowAccumulate": "N", "recurringInterval": "30",
        "recurringCount": "24",
    }


def test_every_updatable_field_in_wire_format() -> None:
    fields = PlanFields(status="inactive", amount=Decimal("1500"), allow_accumulate=True,
                        max_accumulate_amount=Decimal("3000"), recurring_interval=7,
                        recurring_count=0, charge_next_date=date(2026, 12, 7),
                        charge_on_date="0712")
    assert messages.fields_to_wire(fields, exponent=0) == [
        ("recurringStatus", "N"), ("amount", "000000001500"), ("allowAccumulate", "Y"),
        ("maxAccumulateAmount", "000000003000"), ("recurringInterval", "7"),
        ("recurringCount", "0"), ("chargeNextDate", "07122026"), ("chargeOnDate", "0712"),
    ]


COMPULSORY = {"version", "timeStamp", "merchantID", "recurringUniqueID", "processType"}


def test_inquiry_and_a_cancel_without_a_live_record_carry_only_the_compulsory_fields() -> None:
    assert set(sent(messages.Write("1", messages.INQUIRY, ()))) == COMPULSORY
    assert set(sent(messages.cancel_write("1", None, exponent=2))) == COMPULSORY


def test_a_cancel_carries_the_live_values_the_sample_sends() -> None:
    live = messages.live_plan(messages.read_response(SAMPLE_INQUIRY_ANSWER))
    request = sent(messages.cancel_write("156142", live, exponent=2))
    assert request["processType"] == "C"
    assert {tag: request[tag] for tag in set(request) - COMPULSORY} == {
        "recurringStatus": "Y", "amount": "000000009990", "allowAccumulate": "N"}


def test_fields_over_fills_gaps_from_the_base() -> None:
    live = PlanFields(status="active", amount=Decimal("10"), recurring_count=12)
    desired = PlanFields(amount=Decimal("12.50"))
    assert desired.over(live) == PlanFields(status="active", amount=Decimal("12.50"),
                                            recurring_count=12)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<RecurringMaintenanceResponse><respCode>&lol2;</respCode></RecurringMaintenanceResponse>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<RecurringMaintenanceResponse><respReason>&xxe;</respReason></RecurringMaintenanceResponse>"""


@pytest.mark.parametrize(("xml", "message"), [
    (BILLION_LAUGHS, "DTD or entity"),
    (EXTERNAL_ENTITY, "DTD or entity"),
    (b"<!doctype RecurringMaintenanceResponse><RecurringMaintenanceResponse/>", "DTD"),
    (b"<RecurringMaintenanceResponse>" + b"<a>x</a>" * 3000 + b"</RecurringMaintenanceResponse>",
     "larger than"),
    (b"<RecurringMaintenanceResponse><respCode>00</respCode>", "not well-formed"),
    (b"<Other><respCode>00</respCode></Other>", "expected <RecurringMaintenanceResponse>"),
    (b"<RecurringMaintenanceResponse><a><b/></a></RecurringMaintenanceResponse>", "only text"),
    (b"<RecurringMaintenanceResponse><respCode>00</respCode><respCode>16</respCode>"
     b"</RecurringMaintenanceResponse>", "appears twice"),
    (b"<RecurringMaintenanceResponse><respReason>x</respReason></RecurringMaintenanceResponse>",
     "no respCode"),
])
def test_unsafe_or_malformed_answers_are_refused(xml: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        messages.read_response(xml)


def test_utf16_encoded_dtd_is_refused_too() -> None:
    xml = ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE r [<!ENTITY e "x">]>'
           "<RecurringMaintenanceResponse><respCode>&e;</respCode>"
           "</RecurringMaintenanceResponse>").encode("utf-16")
    with pytest.raises(MessageError, match="DTD"):
        messages.read_response(xml)


@pytest.mark.parametrize(("tag", "value"), [
    ("amount", "9990"), ("currency", "000"), ("recurringStatus", "X"),
    ("chargeNextDate", "20213107"), ("recurringInterval", "thirty"), ("allowAccumulate", "y"),
    # values outside the documented ranges (N 5; interval 1..365)
    ("recurringCount", "-1"), ("recurringCount", "100000"), ("recurringInterval", "0"),
    ("recurringInterval", "366"), ("currentCount", "-3"), ("recurringCount", "1\u0663"),
    # the one rule for numbers (issue 20): 1.e-999999999 was read as 0.00
    ("amount", "1.e-999999999"), ("maxAccumulateAmount", "1.0E+2"),
    ("amount", "1_000.00"), ("amount", "\u0669\u0669.90"), ("amount", "99.900"),
    ("recurringInterval", "7.0"), ("recurringCount", "+12"),
])
def test_malformed_fields_name_the_plan_and_field(tag: str, value: str) -> None:
    root = etree.fromstring(SAMPLE_INQUIRY_ANSWER)
    root.find(tag).text = value  # type: ignore[union-attr]
    with pytest.raises(MessageError, match=f"plan 156142 .*{tag}|{re.escape(value)}"):
        messages.live_plan(messages.read_response(etree.tostring(root)))


# The requests the guide's samples answer (timeStamp, merchant and plan as sent).
SAMPLE_REQUEST = {"version": "2.4", "timeStamp": "030321155002", "merchantID": "JT01",
                  "recurringUniqueID": "156142", "processType": "I"}


def test_the_documented_answers_are_bound_to_their_requests() -> None:
    messages.check_bound(messages.read_response(SAMPLE_INQUIRY_ANSWER), SAMPLE_REQUEST)
    update_answer = messages.read_response(
        b"<RecurringMaintenanceResponse><version>2.4</version><timeStamp>050321091314"
        b"</timeStamp><respCode>00</respCode><respReason>Update Successful</respReason>"
        b"<recurringUniqueID>156142</recurringUniqueID></RecurringMaintenanceResponse>")
    messages.check_bound(update_answer, {**SAMPLE_REQUEST, "processType": "U",
                                         "timeStamp": "050321091314"})
    with pytest.raises(MessageError, match="replayed or stale"):
        messages.check_bound(update_answer, {**SAMPLE_REQUEST, "processType": "U"})


@pytest.mark.parametrize(("sent", "shown"), [
    ("XXXXXXXXXXXX1111", "XXXXXXXXXXXX1111"),  # masked by the gateway, as documented
    ("4111111111111111", "411111XXXXXX1111"),  # unmasked: at most first 6 / last 4
    ("411111******1111", "411111******1111"),
    ("5500 0000 0000 0004", "5500 00XX XXXX 0004"),
    ("12345678", "XXXX5678"),  # too short to be a card number: last 4 only
])
def test_a_card_number_is_kept_masked_whatever_the_gateway_sends(sent: str, shown: str) -> None:
    root = etree.fromstring(SAMPLE_INQUIRY_ANSWER)
    root.find("maskedCardNo").text = sent  # type: ignore[union-attr]
    plan = messages.live_plan(messages.read_response(etree.tostring(root)))
    assert plan.masked_card_no == shown
