"""The field table (roster.participants.fields) against what spells the fields out by hand: the request
and answer models, the participants table, the CSV reader and the extract."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import String

from roster.bulk import extract
from roster.bulk.csvreader import build_header
from roster.participants import fields, schemas
from roster.participants.fields import Field, Kind
from roster.participants.models import Participant, participant_key


def _names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_the_profile_body_takes_exactly_the_editable_fields():
    assert _names(schemas.ProfileIn) == {f.name for f in fields.EDITABLE} | {fields.PMIS}
    assert (*schemas.CONTACT_FIELDS, *schemas.PROFILE_FIELDS) == (
        *(f.name for f in fields.EDITABLE),
        fields.PMIS,
    )


def test_the_openspecimen_body_takes_its_fields_and_an_id():
    assert _names(schemas.OpenSpecimenParticipantIn) == {"id", *schemas.OPENSPECIMEN_FIELDS}
    assert _names(schemas.OpenSpecimenParticipantOut) == {"id", *schemas.OPENSPECIMEN_FIELDS}
    # The OpenClinica contact fields OpenSpecimen's resource does not carry.
    left_out = set(fields.CONTACT_NAMES) - set(schemas.OPENSPECIMEN_FIELDS)
    assert left_out == {"emailAddress", "mobileNumber", "identifier"}


def test_the_single_endpoint_takes_a_bulk_row_with_the_id_as_subject_key():
    assert _names(schemas.SingleParticipantIn) == {"subjectKey", *fields.CONTACT_NAMES, "phoneNumber"}


def test_the_record_answers_every_editable_field():
    assert {f.name for f in fields.EDITABLE} | {fields.PMIS} <= _names(schemas.ParticipantOut)


@pytest.mark.parametrize("field", [fields.PARTICIPANT_ID, *fields.EDITABLE], ids=lambda f: f.name)
def test_each_field_has_a_participants_column_that_holds_its_longest_value(field: Field):
    column = Participant.__table__.c[field.column]
    if field.max_length is not None:
        assert isinstance(column.type, String)
        assert column.type.length is not None and column.type.length >= field.max_length
    if field.key_column is not None:
        assert field.key_column in Participant.__table__.c


def test_the_reader_maps_every_header_of_the_table_case_insensitively():
    headers = [header.upper() for f in fields.BULK for header in f.headers]
    header = build_header([*headers, "middleName"], ",")
    assert list(header.columns) == [f.name for f in fields.BULK]
    assert header.unknown == ["middleName"]


def test_the_extract_carries_the_contact_fields_in_the_tables_order():
    assert extract.PII_COLUMNS == ("First Name", "Last Name", "Email", "Mobile", "Identifier")
    assert extract.header(pii=True, access_code=False)[len(extract.BASE_COLUMNS) :] == extract.PII_COLUMNS


def test_a_half_described_field_is_refused():
    with pytest.raises(ValueError, match="max_length and too_long"):
        Field("x", "x", max_length=3)
    with pytest.raises(ValueError, match="invalid"):
        Field("x", "x", Kind.DATE)
    with pytest.raises(ValueError, match="choices"):
        Field("x", "x", Kind.CHOICE, invalid="c")


def test_one_id_key_for_participants_and_job_logs():
    assert participant_key("Ab-ß") == "ab-ss"
    long_id = "Ä" * 250
    assert participant_key(long_id) == participant_key(long_id.lower())
    assert participant_key(long_id).startswith("#") and len(participant_key(long_id)) <= 200
