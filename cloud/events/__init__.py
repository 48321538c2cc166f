"""A store's item events as a feed: moves, sales, unsold exits, returns, arrivals."""
