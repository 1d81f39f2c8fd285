"""The shipped model files, installed as package data ``edgemood.models``."""
