"""Answering: one answer (chat), side by side (compare), anonymous battles (arena), replay of a stored answer, ratings of answers (feedback), running generations (runs) and abuse limits."""
