-- The production schema of "learners" on MariaDB 10.11+: the PostgreSQL demo's schema
-- (deid/backends/postgresql/demo/schema.sql) with the same table and column names, each PostgreSQL-only form
-- replaced by its nearest MariaDB form:
--   identity and serial columns  AUTO_INCREMENT (which, unlike GENERATED ALWAYS, accepts explicit ids)
--   the sequence invoice_seq     a MariaDB SEQUENCE, still shared by two tables' DEFAULTs (not on MySQL 8)
--   the domain email_address     a CHECK on each column that had the domain
--   the enum type course_level   ENUM inline, on each column that had the type
--   jsonb and text[]             JSON (MariaDB: LONGTEXT with a json_valid CHECK)
--   inet                         VARCHAR(45), which holds an IPv6 address as text
--   bytea                        BLOB
--   timestamptz                  DATETIME(6), in UTC (the trigger and DEFAULT write UTC_TIMESTAMP)
--   the trigger function         a BEFORE UPDATE trigger stamping updated_at, as in PostgreSQL
--   the partitioned table        a plain table: MariaDB refuses FOREIGN KEYs on partitioned tables
--                                (error 1506), and course_progress has two
--   the schema partners          none inside a database: partner_staff is a table of this database, so its
--                                rule key is public.partner_staff (rules/learners_mysql.yaml)
--   the materialized view        a view (computed when read)
-- Text columns that a key covers are VARCHAR (InnoDB indexes TEXT only by a prefix). The database is
-- utf8mb4_bin, as PostgreSQL's C collation compares bytes (deid.backends.mysql.demo.create_database).
-- One statement per ';' at the end of a line (the loader splits there; nothing here holds one).

CREATE SEQUENCE invoice_seq START WITH 100001;

CREATE TABLE learners (
    id                  INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email               VARCHAR(255) NOT NULL UNIQUE CHECK (LOCATE('@', email) > 1),
    first_name          VARCHAR(100) NOT NULL,
    last_name           VARCHAR(100) NOT NULL,
    full_name           VARCHAR(201) AS (CONCAT(first_name, ' ', last_name)) STORED,
    date_of_birth       DATE NOT NULL CHECK (date_of_birth > '1900-01-01'),
    phone               VARCHAR(40),
    street_address      VARCHAR(255),
    city                VARCHAR(100),
    state               CHAR(2),
    zip                 VARCHAR(10) CHECK (zip REGEXP '^[0-9]{5}(-[0-9]{4})?$'),
    ssn                 VARCHAR(11) UNIQUE CHECK (ssn REGEXP '^[0-9]{3}-[0-9]{2}-[0-9]{4}$'),
    password_hash       VARCHAR(255) NOT NULL,
    last_login_ip       VARCHAR(45),
    signup_at           DATETIME(6) NOT NULL,
    is_test_account     BOOLEAN NOT NULL DEFAULT FALSE,
    profile             JSON NOT NULL DEFAULT '{}',
    tags                JSON NOT NULL DEFAULT '[]',
    accessibility_notes TEXT,
    updated_at          DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    INDEX learners_last_name_idx (last_name, first_name)
);

CREATE TRIGGER learners_stamp_updated_at BEFORE UPDATE ON learners
    FOR EACH ROW SET NEW.updated_at = UTC_TIMESTAMP(6);

CREATE TABLE instructors (
    id                    INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email                 VARCHAR(255) NOT NULL UNIQUE CHECK (LOCATE('@', email) > 1),
    name                  VARCHAR(255) NOT NULL,
    bio                   TEXT,
    website               VARCHAR(255),
    payout_account_number VARCHAR(40),
    tax_id                VARCHAR(20),
    hired_on              DATE NOT NULL
);

CREATE TABLE courses (
    id            INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title         VARCHAR(255) NOT NULL,
    instructor_id INT NOT NULL,
    price         DECIMAL(10, 2) NOT NULL CHECK (price >= 0),
    level         ENUM('beginner', 'intermediate', 'advanced') NOT NULL,
    published     BOOLEAN NOT NULL DEFAULT FALSE,
    INDEX courses_instructor_idx (instructor_id),
    FOREIGN KEY (instructor_id) REFERENCES instructors (id)
);

CREATE TABLE degrees (
    id              INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    learner_id      INT NOT NULL,
    degree          VARCHAR(255) NOT NULL,
    institution     VARCHAR(255) NOT NULL,
    graduation_year INT CHECK (graduation_year BETWEEN 1940 AND 2100),
    diploma_number  VARCHAR(40),
    INDEX degrees_learner_idx (learner_id),
    FOREIGN KEY (learner_id) REFERENCES learners (id) ON DELETE CASCADE
);

CREATE TABLE enrollments (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    learner_id  INT NOT NULL,
    course_id   INT NOT NULL,
    enrolled_at DATETIME(6) NOT NULL,
    status      VARCHAR(20) NOT NULL CHECK (status IN ('active', 'completed', 'dropped', 'refunded')),
    UNIQUE (learner_id, course_id),
    INDEX enrollments_course_idx (course_id),
    FOREIGN KEY (learner_id) REFERENCES learners (id) ON DELETE CASCADE,
    FOREIGN KEY (course_id) REFERENCES courses (id)
);

CREATE TABLE payments (
    id             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    enrollment_id  BIGINT NOT NULL,
    learner_id     INT NOT NULL,
    amount         DECIMAL(10, 2) NOT NULL CHECK (amount >= 0),
    currency       CHAR(3) NOT NULL DEFAULT 'USD',
    card_last4     CHAR(4),
    -- Should never have been stored: the full card number, kept by an old checkout integration.
    card_pan       VARCHAR(19),
    billing_zip    VARCHAR(10),
    paid_at        DATETIME(6) NOT NULL,
    invoice_number VARCHAR(24) NOT NULL UNIQUE DEFAULT (CONCAT('INV-', NEXTVAL(invoice_seq))),
    INDEX payments_learner_idx (learner_id),
    INDEX payments_enrollment_idx (enrollment_id),
    FOREIGN KEY (enrollment_id) REFERENCES enrollments (id),
    FOREIGN KEY (learner_id) REFERENCES learners (id)
);

CREATE TABLE refunds (
    id            INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    payment_id    BIGINT NOT NULL,
    amount        DECIMAL(10, 2) NOT NULL CHECK (amount > 0),
    reason        TEXT,
    refunded_at   DATETIME(6) NOT NULL,
    refund_number VARCHAR(24) NOT NULL UNIQUE DEFAULT (CONCAT('RFD-', NEXTVAL(invoice_seq))),
    FOREIGN KEY (payment_id) REFERENCES payments (id)
);

-- Progress snapshots. Range-partitioned by year on PostgreSQL; a plain table here (see the top).
CREATE TABLE course_progress (
    learner_id       INT NOT NULL,
    course_id        INT NOT NULL,
    recorded_on      DATE NOT NULL,
    percent_complete DECIMAL(5, 2) NOT NULL CHECK (percent_complete BETWEEN 0 AND 100),
    last_device_id   VARCHAR(64),
    client_ip        VARCHAR(45),
    PRIMARY KEY (learner_id, course_id, recorded_on),
    FOREIGN KEY (learner_id) REFERENCES learners (id) ON DELETE CASCADE,
    FOREIGN KEY (course_id) REFERENCES courses (id)
);

-- Append-only log; it never had a primary key.
CREATE TABLE audit_events (
    occurred_at  DATETIME(6) NOT NULL,
    actor_email  VARCHAR(255),
    action       VARCHAR(40) NOT NULL,
    details      JSON,
    ip           VARCHAR(45),
    INDEX audit_events_occurred_at_idx (occurred_at)
);

-- A partner's staff: in the schema `partners` on PostgreSQL; a database has no schema inside it here.
CREATE TABLE partner_staff (
    id                     SMALLINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    partner_name           VARCHAR(255) NOT NULL,
    full_name              VARCHAR(255) NOT NULL,
    work_email             VARCHAR(255) NOT NULL UNIQUE CHECK (LOCATE('@', work_email) > 1),
    work_phone             VARCHAR(40),
    employee_number        VARCHAR(40) NOT NULL,
    medical_license_number VARCHAR(40),
    badge_photo            BLOB,
    api_token              VARCHAR(64) UNIQUE
);

-- One accommodation record per learner; approved by a partner's (usually clinical) staff member.
CREATE TABLE accommodations (
    learner_id                      INT NOT NULL PRIMARY KEY,
    `condition`                     TEXT NOT NULL,
    medical_record_number           VARCHAR(40),
    health_plan_beneficiary_number  VARCHAR(40),
    approved_by_staff_id            SMALLINT,
    approved_on                     DATE,
    FOREIGN KEY (learner_id) REFERENCES learners (id) ON DELETE CASCADE,
    FOREIGN KEY (approved_by_staff_id) REFERENCES partner_staff (id)
);

-- The catalogue's categories: `name` is a thing's name, not a person's.
CREATE TABLE categories (
    id   INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL UNIQUE
);

-- Contacts imported from the CRM the platform used before 2019, under the CRM's own column names: joined-up
-- words, a text UUID key, an e-mail under `user_id` and `notes`, an SSN under `ref`, a phone inside `extra`.
CREATE TABLE legacy_contacts (
    contact_uuid VARCHAR(36) NOT NULL PRIMARY KEY,
    user_id      VARCHAR(255) NOT NULL,
    emailaddress VARCHAR(255),
    phonenumber  VARCHAR(40),
    passwordhash VARCHAR(255),
    notes        TEXT,
    ref          VARCHAR(11),
    extra        JSON NOT NULL DEFAULT '{}',
    category_id  INT,
    visits       INT NOT NULL DEFAULT 0,
    credit       DECIMAL(10, 2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
    tier         ENUM('beginner', 'intermediate', 'advanced') NOT NULL,
    imported_at  DATETIME(6) NOT NULL,
    FOREIGN KEY (category_id) REFERENCES categories (id)
);

CREATE VIEW active_learners AS
SELECT l.id, l.full_name, l.email, l.state, l.signup_at
FROM learners l
WHERE NOT l.is_test_account
  AND EXISTS (SELECT 1 FROM enrollments e WHERE e.learner_id = l.id AND e.status = 'active');

-- A materialized view on PostgreSQL (refreshed by the reporting job); a view here.
CREATE VIEW course_revenue AS
SELECT c.id AS course_id,
       c.title,
       COUNT(p.id) AS payments,
       CAST(COALESCE(SUM(p.amount), 0) AS DECIMAL(12, 2)) AS gross_revenue
FROM courses c
LEFT JOIN enrollments e ON e.course_id = c.id
LEFT JOIN payments p ON p.enrollment_id = e.id
GROUP BY c.id, c.title;
