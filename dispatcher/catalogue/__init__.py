"""The provider's campaigns and flows, read by one replica at a time and published for the
service's campaign cache (refresher.py)."""

from dispatcher.catalogue.refresher import CatalogueRefresher

__all__ = ["CatalogueRefresher"]
