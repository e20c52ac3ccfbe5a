-- The party lifecycle's time-driven steps (postgres dialect). Keep in step with
-- ../sqlite/0006_party_lifecycle.sql.
-- `min_members`: at the booking deadline a party with fewer members (leader included) is cancelled
-- with reason `not_enough_members` instead of closed.
ALTER TABLE parties ADD COLUMN min_members BIGINT NOT NULL DEFAULT 2;

-- What the sweeper scans every second: open parties by deadline, closed ones by meet time.
CREATE INDEX parties_open_deadline ON parties (deadline_at) WHERE status IN ('recruiting', 'full');
CREATE INDEX parties_closed_meet ON parties (meet_at) WHERE status = 'closed';
