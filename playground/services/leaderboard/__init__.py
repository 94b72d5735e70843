"""The leaderboard: battles from votes (battles), the rating math (encoding, fit, stats, ratings), style control, the incremental answer index, and the plots; ``service`` puts them together."""
