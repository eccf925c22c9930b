"""The pipeline's vocabulary: raw callbacks in, derived events and state out. Pure data."""
