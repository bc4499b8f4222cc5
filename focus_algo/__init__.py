"""Focus reference algorithm (torch): SEC, SIC, sparse traces, golden vectors."""
