"""farmlink's public language: event envelope, payload models, topic names. Imports nothing of ours."""
