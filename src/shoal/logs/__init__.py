"""Task logs: the types every part shares (agent, log broker, engine API, client), reading
Docker's json-file logs, and Docker's multiplexed stream and line format."""
