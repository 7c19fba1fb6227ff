-- What an input said, so a message id reused for different content is refused, not silently ignored.
ALTER TABLE inbox ADD COLUMN digest text;
