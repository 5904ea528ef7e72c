"""Instacart in Kaggle's own layout, as small files a test writes (imported as a module by the
importer and Data page tests)."""

from __future__ import annotations

import gzip
from pathlib import Path


def instacart_catalogue(folder: Path) -> Path:
    """A new folder holding Instacart's products, aisles and departments (both layouts share them)."""
    folder.mkdir()
    (folder / "products.csv").write_text(
        "product_id,product_name,aisle_id,department_id\n"
        "1,Chocolate Sandwich Cookies,61,19\n2,All-Seasons Salt,104,13\n3,Mystery Item,100,21\n"
        "4,Never Ordered,61,19\n"
    )
    (folder / "aisles.csv").write_text(
        "aisle_id,aisle\n61,cookies cakes\n104,spices seasonings\n100,missing\n"
    )
    (folder / "departments.csv").write_text("department_id,department\n19,snacks\n13,pantry\n21,missing\n")
    return folder


def instacart_kaggle_folder(folder: Path, gz: bool = False) -> Path:
    """Kaggle's own layout: orders.csv and the order lines split in prior and train files."""
    instacart_catalogue(folder)
    # user 7: orders 2 (first), 36 (5 days later, 8:00), 10 (5 days later again, train set, 9:00);
    # user 8: order 50 (first, prior) then 51 (test set: no lines); order 99 is in no orders.csv row
    (folder / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
        "36,7,prior,2,1,8,5.0\n2,7,prior,1,3,14,\n10,7,train,3,2,9,5.0\n"
        "50,8,prior,1,0,23,\n51,8,test,2,6,10,30.0\n"
    )
    prior = (
        "order_id,product_id,add_to_cart_order,reordered\n2,3,1,0\n2,1,2,0\n36,2,1,0\n36,1,2,1\n"
        "50,1,1,0\n50,2,2,0\n99,2,1,0\n"
    )
    train = "order_id,product_id,add_to_cart_order,reordered\n10,2,2,1\n10,1,1,1\n"
    if gz:
        (folder / "order_products__prior.csv.gz").write_bytes(gzip.compress(prior.encode()))
    else:
        (folder / "order_products__prior.csv").write_text(prior)
    (folder / "order_products__train.csv").write_text(train)
    return folder
