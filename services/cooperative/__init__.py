"""The cooperative service: registers cooperatives and households, records plantings and harvest lots."""
