"""eie-gen: sparse, compressed neural-network inference accelerators (EIE/ESE) from Python."""
