"""ReconcileContact: compare a contact with the person the provider holds and repair the drift."""
