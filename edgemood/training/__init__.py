"""Training, evaluation and int8 export of the mood CNN (needs the ``[train]`` extra)."""
