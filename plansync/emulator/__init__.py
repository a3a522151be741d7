"""A stateful local 2C2P gateway that speaks the real envelope and messages."""
