"""The API's data, in memory, with a deterministic demo data set."""

from __future__ import annotations

from dataclasses import dataclass, field

from acme_core import Order, Role, User, stable_id


@dataclass(frozen=True)
class Product:
    """Something the shop sells."""

    sku: str
    name: str
    price_cents: int


@dataclass
class Store:
    """Users, products and orders, keyed by id."""

    users: dict[str, User] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)

    def add_user(self, email: str, name: str, role: Role) -> User:
        user = User(id=stable_id("usr", email), email=email, name=name, role=role)
        self.users[user.id] = user
        return user

    @classmethod
    def demo(cls) -> Store:
        """The same three users and four products every time."""
        store = cls()
        store.add_user("ada@acme.test", "Ada Lovelace", Role.ADMIN)
        store.add_user("grace@acme.test", "Grace Hopper", Role.MEMBER)
        store.add_user("alan@acme.test", "Alan Turing", Role.VIEWER)
        for sku, name, price in [
            ("mug", "Acme mug", 1250),
            ("tee", "Acme T-shirt", 1999),
            ("cap", "Acme cap", 1500),
            ("sticker", "Sticker pack", 300),
        ]:
            store.products[sku] = Product(sku, name, price)
        return store
