"""The buyer service: places and cancels orders, makes floor commitments."""
