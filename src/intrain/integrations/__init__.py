"""Adapters that let other training frameworks drive intrain's pruning methods."""
