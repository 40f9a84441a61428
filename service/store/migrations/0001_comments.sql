-- Comments, one row each; id gives insertion order.
CREATE TABLE comments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_id TEXT        NOT NULL,
    email      TEXT        NOT NULL,
    comment    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The list endpoint filters by content_id and orders by id.
CREATE INDEX comments_content_id_id_idx ON comments (content_id, id);
