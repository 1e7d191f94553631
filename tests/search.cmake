# The LongRoPE evolutionary search.
