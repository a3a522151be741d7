"""The 2C2P wire protocol, and nothing else: envelope, messages, codes, the HTTP client."""
