"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:19:19.541357
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('oid', sa.String(length=100), nullable=False),
    sa.Column('oid_key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('participant_id_method', sa.String(length=10), nullable=False),
    sa.Column('participant_id_template', sa.String(length=60), nullable=True),
    sa.Column('id_counter', sa.Integer(), nullable=False),
    sa.Column('participate_active', sa.Boolean(), nullable=False),
    sa.Column('enrollment_cap', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studies')),
    sa.UniqueConstraint('oid_key', name=op.f('uq_studies_oid_key'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('username_key', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username_key', name=op.f('uq_users_username_key'))
    )
    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('oid', sa.String(length=100), nullable=False),
    sa.Column('oid_key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('enrollment_cap', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_sites_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('oid_key', name=op.f('uq_sites_oid_key'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sites_study_id'), ['study_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('register', sa.Boolean(), nullable=False),
    sa.Column('source_file_name', sa.String(length=255), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('date_completed', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=80), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('upload_size', sa.Integer(), nullable=False),
    sa.Column('upload_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_jobs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_jobs_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_jobs_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('uuid', name=op.f('uq_jobs_uuid'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_jobs_status_created', ['status', 'id'], unique=False)
        batch_op.create_index('ix_jobs_study_created', ['study_id', 'id'], unique=False)

    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.String(length=30), nullable=False),
    sa.Column('participant_key', sa.String(length=100), nullable=False),
    sa.Column('oid', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('participate_status', sa.String(length=20), nullable=True),
    sa.Column('access_code', sa.String(length=20), nullable=True),
    sa.Column('first_name', sa.String(length=35), nullable=True),
    sa.Column('last_name', sa.String(length=35), nullable=True),
    sa.Column('email_address', sa.String(length=255), nullable=True),
    sa.Column('mobile_number', sa.String(length=17), nullable=True),
    sa.Column('identifier', sa.String(length=35), nullable=True),
    sa.Column('middle_name', sa.String(length=255), nullable=True),
    sa.Column('uid', sa.String(length=255), nullable=True),
    sa.Column('uid_key', sa.String(length=255), nullable=True),
    sa.Column('empi', sa.String(length=255), nullable=True),
    sa.Column('empi_key', sa.String(length=255), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('death_date', sa.Date(), nullable=True),
    sa.Column('vital_status', sa.String(length=20), nullable=True),
    sa.Column('gender', sa.String(length=40), nullable=True),
    sa.Column('race', sa.JSON(), nullable=True),
    sa.Column('ethnicities', sa.JSON(), nullable=True),
    sa.Column('sex_genotype', sa.String(length=40), nullable=True),
    sa.Column('activity_status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_participants_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_participants_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants')),
    sa.UniqueConstraint('access_code', name=op.f('uq_participants_access_code')),
    sa.UniqueConstraint('oid', 'study_id', name=op.f('uq_participants_oid_study_id')),
    sa.UniqueConstraint('participant_key', 'study_id', name=op.f('uq_participants_participant_key_study_id'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index('ix_participants_site_status', ['site_id', 'status'], unique=False)
        batch_op.create_index('ix_participants_study_empi', ['study_id', 'empi_key'], unique=False)
        batch_op.create_index('ix_participants_study_uid', ['study_id', 'uid_key'], unique=False)

    op.create_table('role_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_role_assignments_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_role_assignments_study_id_studies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_assignments'))
    )
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_role_assignments_user_study', ['user_id', 'study_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_audit_events_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_participant_at', ['participant_id', 'id'], unique=False)

    op.create_table('job_log_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.String(length=255), nullable=True),
    sa.Column('participant_oid', sa.String(length=80), nullable=True),
    sa.Column('participant_key', sa.String(length=255), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('participate_status', sa.String(length=20), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('cells', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_log_entries_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_log_entries')),
    sa.UniqueConstraint('job_id', 'row', name=op.f('uq_job_log_entries_job_id_row'))
    )
    with op.batch_alter_table('job_log_entries', schema=None) as batch_op:
        batch_op.create_index('ix_job_log_entries_job_outcome', ['job_id', 'outcome', 'row'], unique=False)
        batch_op.create_index('ix_job_log_entries_key_job', ['participant_key', 'job_id'], unique=False)

    op.create_table('participant_mrns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('mrn', sa.String(length=100), nullable=False),
    sa.Column('mrn_key', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_mrns_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_participant_mrns_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant_mrns')),
    sa.UniqueConstraint('site_id', 'mrn_key', name=op.f('uq_participant_mrns_site_id_mrn_key'))
    )
    with op.batch_alter_table('participant_mrns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_mrns_participant_id'), ['participant_id'], unique=False)

    op.create_table('upload_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_upload_chunks_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload_chunks')),
    sa.UniqueConstraint('job_id', 'seq', name=op.f('uq_upload_chunks_job_id_seq'))
    )


def downgrade() -> None:
    op.drop_table('upload_chunks')
    with op.batch_alter_table('participant_mrns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_mrns_participant_id'))

    op.drop_table('participant_mrns')
    with op.batch_alter_table('job_log_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_job_log_entries_key_job')
        batch_op.drop_index('ix_job_log_entries_job_outcome')

    op.drop_table('job_log_entries')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_participant_at')

    op.drop_table('audit_events')
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_role_assignments_user_study')

    op.drop_table('role_assignments')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index('ix_participants_study_uid')
        batch_op.drop_index('ix_participants_study_empi')
        batch_op.drop_index('ix_participants_site_status')

    op.drop_table('participants')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_study_created')
        batch_op.drop_index('ix_jobs_status_created')
        batch_op.drop_index(batch_op.f('ix_jobs_site_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_study_id'))

    op.drop_table('sites')
    op.drop_table('users')
    op.drop_table('studies')
