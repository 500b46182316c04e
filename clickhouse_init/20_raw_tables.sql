-- Raw changelog: one row per Debezium event. No PAN, national id, name, email, phone or
-- address ever reaches it: PostgreSQL sends their tokens and masks instead (schema.sql,
-- "Card data and PII"); tables an older clickhouse_init made lose those columns at the end. Source columns keep exact types (money
-- Decimal(18,2), timestamptz DateTime64(6,'UTC')), then the CDC metadata:
--   _op          c insert, u update, d delete, r snapshot read
--   _lsn         source LSN of the change;  _version: 0 for snapshot reads, else _lsn
--                (current state = highest (_version, _lsn) per key; never wall-clock time)
--   _source_ts   commit time in PostgreSQL;  _emitted_ts: when Debezium read it
--   _topic, _partition, _offset   where it came from in Kafka;  _loaded_at: server time of load
--   _is_deleted  1 for deletes (the row carries the before image)
-- ReplacingMergeTree on (key, _version, _lsn): a replayed event collapses into the original.
-- ORDER BY key first: stg/ODS read "latest change per key"; time-range reads (`_loaded_at`,
-- `_source_ts`) skip old parts by minmax indexes (25_raw_stream_progress.sql). No PARTITION BY:
-- a consumer block (one Kafka partition's consecutive offsets) is then one part, written or not
-- as a whole, so the highest offset a table holds is a complete prefix however the block's
-- commit times spread (a monthly partitioning split a block straddling two months into two
-- parts, and a crash between them left a gap the resume point skipped). The non-replicated
-- dedup window lets the consumer's insert_deduplication_token drop a retried identical block.

CREATE TABLE IF NOT EXISTS raw.customer
(
    customer_id    Int64,
    external_ref   UUID,
    national_id_token   String,
    full_name_masked    String,
    email_masked        String,
    phone_masked        String,
    national_id_masked  String,
    date_of_birth  Date32,
    city           String,
    country        LowCardinality(String),
    kyc_notes      Nullable(String),
    status         LowCardinality(String),
    closed_at      Nullable(DateTime64(6, 'UTC')),
    created_at     DateTime64(6, 'UTC'),
    updated_at     DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (customer_id, _version, _lsn)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS raw.account
(
    account_id     Int64,
    customer_id    Int64,
    iban           String,
    currency       LowCardinality(String),
    account_type   LowCardinality(String),
    status         LowCardinality(String),
    closed_at      Nullable(DateTime64(6, 'UTC')),
    created_at     DateTime64(6, 'UTC'),
    updated_at     DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (account_id, _version, _lsn)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS raw.card
(
    card_id        Int64,
    account_id     Int64,
    pan_token      String,
    pan_last4      String,
    expires_on     Date32,
    card_type      LowCardinality(String),
    status         LowCardinality(String),
    closed_at      Nullable(DateTime64(6, 'UTC')),
    created_at     DateTime64(6, 'UTC'),
    updated_at     DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (card_id, _version, _lsn)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS raw.terminal
(
    terminal_id    Int64,
    terminal_type  LowCardinality(String),
    merchant_name  String,
    mcc            LowCardinality(String),
    city           String,
    country        LowCardinality(String),
    currency       LowCardinality(String),
    description    Nullable(String),
    status         LowCardinality(String),
    closed_at      Nullable(DateTime64(6, 'UTC')),
    created_at     DateTime64(6, 'UTC'),
    updated_at     DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (terminal_id, _version, _lsn)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS raw.transaction
(
    transaction_id Int64,
    card_id        Int64,
    terminal_id    Int64,
    txn_type       LowCardinality(String),
    status         LowCardinality(String),
    amount         Decimal(18, 2),
    currency       LowCardinality(String),
    card_present   Bool,
    entry_mode     LowCardinality(String),
    decline_reason Nullable(String),
    created_at     DateTime64(6, 'UTC'),
    approved_at    Nullable(DateTime64(6, 'UTC')),
    declined_at    Nullable(DateTime64(6, 'UTC')),
    reversed_at    Nullable(DateTime64(6, 'UTC')),
    updated_at     DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (transaction_id, _version, _lsn)
SETTINGS non_replicated_deduplication_window = 1000;

-- Debezium heartbeats (schema cdc in PostgreSQL): end-to-end lag = _loaded_at - beat_at.
CREATE TABLE IF NOT EXISTS raw.heartbeat
(
    source         LowCardinality(String),
    beat_at        DateTime64(6, 'UTC'),
    _op            LowCardinality(String),
    _lsn           UInt64,
    _version       UInt64,
    _source_ts     DateTime64(3, 'UTC'),
    _emitted_ts    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     Int32,
    _offset        Int64,
    _loaded_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    _is_deleted    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY (source, _version, _lsn)
TTL toDateTime(_source_ts) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Tables from before card-data protection: drop the clear columns (and the values they held),
-- add the protected ones. PostgreSQL re-sends every such row with its tokens (bank_vault.retokenize).
ALTER TABLE raw.customer
    ADD COLUMN IF NOT EXISTS national_id_token String AFTER external_ref,
    ADD COLUMN IF NOT EXISTS full_name_masked String AFTER national_id_token,
    ADD COLUMN IF NOT EXISTS email_masked String AFTER full_name_masked,
    ADD COLUMN IF NOT EXISTS phone_masked String AFTER email_masked,
    ADD COLUMN IF NOT EXISTS national_id_masked String AFTER phone_masked,
    DROP COLUMN IF EXISTS full_name,
    DROP COLUMN IF EXISTS email,
    DROP COLUMN IF EXISTS phone,
    DROP COLUMN IF EXISTS national_id,
    DROP COLUMN IF EXISTS address;

ALTER TABLE raw.card
    ADD COLUMN IF NOT EXISTS pan_token String AFTER account_id,
    DROP COLUMN IF EXISTS pan;
