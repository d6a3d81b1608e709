"""The crowdfunding stack program: typed config and the composition of components."""
