-- When the hygiene job last alerted that a token or secret expires soon
-- (item: "token:ID" or "secret:PROJECT/ENV/NAME"), so that each is alerted
-- at most once a day whichever server leads, and a new leader does not
-- alert again what the last one did.
CREATE TABLE expiry_alerts (
	item       TEXT PRIMARY KEY,
	alerted_at BIGINT NOT NULL -- Unix nanoseconds
);
