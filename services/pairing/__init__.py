"""The pairing service: "9+2" and "1+1" pairings, the support they deliver, and projects with owners and milestones."""
