"""The HTTP gateway: parties who cannot speak Kafka post signed inputs and read their own data."""
