"""Request and response models of the channel feeds (field names are the channels' own)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SHOPIFY_ITEMS = 10_000


class GoogleLocalInventoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_code: str = Field(description="The store id (must match the store code in Google Business Profile).")
    id: str = Field(description="The item id: the GTIN-14.")
    quantity: int = Field(description="available_to_sell.")
    availability: Literal["in_stock", "limited_availability", "out_of_stock"] = Field(
        description="Bucket of quantity: >= 3 in_stock, 1-2 limited_availability, 0 out_of_stock."
    )
    pickup_method: str = Field(description="From the API settings (feed_pickup_method), e.g. buy or reserve.")
    pickup_SLA: str = Field(description="From the API settings (feed_pickup_sla), e.g. same day.")


class GoogleLocalInventoryFeed(BaseModel):
    entries: list[GoogleLocalInventoryEntry]


class ShopifyItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gtin: str = Field(max_length=64, description="GTIN-8/12/13/14 of the variant.")
    inventory_item_id: str = Field(
        min_length=1, max_length=200, description="Shopify's id of the variant's inventory item (gid://...)."
    )
    compare_quantity: int = Field(
        description="The 'available' quantity the caller read from Shopify; Shopify refuses the set if it moved."
    )


class ShopifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location_id: str = Field(min_length=1, max_length=200, description="Shopify's id of the store's location.")
    items: list[ShopifyItem] = Field(min_length=1, max_length=MAX_SHOPIFY_ITEMS)


class ShopifyQuantity(BaseModel):
    inventoryItemId: str
    locationId: str
    quantity: int = Field(description="available_to_sell.")
    compareQuantity: int


class ShopifyInput(BaseModel):
    name: Literal["available"]
    reason: Literal["correction"]
    referenceDocumentUri: str
    quantities: list[ShopifyQuantity] = Field(max_length=250)


class ShopifyPayloads(BaseModel):
    inputs: list[ShopifyInput] = Field(
        description="One `InventorySetQuantitiesInput` per call of the mutation, at most 250 quantities each."
    )
