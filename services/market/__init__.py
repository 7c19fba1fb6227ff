"""The market-price service: records observed reference prices."""
