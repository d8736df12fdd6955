import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "email", "occur_time", "product_viewed", "added_to_cart", "placed_order", "cart_abandoned", "custom")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_VIEWED_FIELD_NUMBER: _ClassVar[int]
    ADDED_TO_CART_FIELD_NUMBER: _ClassVar[int]
    PLACED_ORDER_FIELD_NUMBER: _ClassVar[int]
    CART_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    email: str
    occur_time: _timestamp_pb2.Timestamp
    product_viewed: ProductViewed
    added_to_cart: AddedToCart
    placed_order: PlacedOrder
    cart_abandoned: CartAbandoned
    custom: CustomEvent
    def __init__(self, event_id: _Optional[str] = ..., email: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., product_viewed: _Optional[_Union[ProductViewed, _Mapping]] = ..., added_to_cart: _Optional[_Union[AddedToCart, _Mapping]] = ..., placed_order: _Optional[_Union[PlacedOrder, _Mapping]] = ..., cart_abandoned: _Optional[_Union[CartAbandoned, _Mapping]] = ..., custom: _Optional[_Union[CustomEvent, _Mapping]] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("product_id", "sku", "title", "categories", "price", "url", "image_url")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    price: _common_pb2.Money
    url: str
    image_url: str
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("product_id", "sku", "title", "quantity", "unit_price", "url", "image_url")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_price: _common_pb2.Money
    url: str
    image_url: str
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ...) -> None: ...

class Cart(_message.Message):
    __slots__ = ("cart_id", "items", "total", "checkout_url", "last_activity_time")
    CART_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    cart_id: str
    items: _containers.RepeatedCompositeFieldContainer[LineItem]
    total: _common_pb2.Money
    checkout_url: str
    last_activity_time: _timestamp_pb2.Timestamp
    def __init__(self, cart_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., checkout_url: _Optional[str] = ..., last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "lines", "total", "discount", "shipping", "coupon_codes")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[LineItem]
    total: _common_pb2.Money
    discount: _common_pb2.Money
    shipping: _common_pb2.Money
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., discount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., shipping: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., coupon_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class ProductViewed(_message.Message):
    __slots__ = ("product",)
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    product: Product
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ...) -> None: ...

class AddedToCart(_message.Message):
    __slots__ = ("item", "cart")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CART_FIELD_NUMBER: _ClassVar[int]
    item: LineItem
    cart: Cart
    def __init__(self, item: _Optional[_Union[LineItem, _Mapping]] = ..., cart: _Optional[_Union[Cart, _Mapping]] = ...) -> None: ...

class PlacedOrder(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CartAbandoned(_message.Message):
    __slots__ = ("cart",)
    CART_FIELD_NUMBER: _ClassVar[int]
    cart: Cart
    def __init__(self, cart: _Optional[_Union[Cart, _Mapping]] = ...) -> None: ...

class CustomEvent(_message.Message):
    __slots__ = ("name", "properties", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    properties: _struct_pb2.Struct
    value: _common_pb2.Money
    def __init__(self, name: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...
