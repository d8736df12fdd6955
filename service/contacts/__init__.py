"""Contacts: upsert by email, read, list and erase. `rules` holds the use cases
and their SQL and returns `ContactView`s (no ORM rows); `handlers.ContactHandlers`
turns the contact RPCs into those calls and `handlers.contact_message` a view into
a message."""
