"""Products pages and their JSON twins: tourists browse without signing in, staff list.

Upload routes take FastAPI's per-route ``max_body_size`` (``UPLOAD_BODY_LIMIT``, one photo of
the largest size a service may allow plus the form): it overrides the app-wide ``[web]
max_body_bytes`` for these routes only, so a 50 MB body is refused with 413 from its
Content-Length (or once a chunked body passes the limit) before anything parses it. The photo
store then reads at most the configured ``photos.max_bytes`` of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.photos import CONTENT_TYPE, PHOTO_ID_PATTERN, UPLOAD_BODY_LIMIT
from agent.village.products import (
    CATEGORIES,
    CONTACT_CHOICES,
    Product,
    ProductInput,
    ProductQuery,
    ProductService,
)
from web_ui.errors import validation_detail
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, public, require_roles, web_context

pages = APIRouter(include_in_schema=False)
api = APIRouter()

PhotoId = Annotated[str, Path(pattern=PHOTO_ID_PATTERN)]
_FIELDS = ("name", "category", "price", "unit", "description", "seller", "phone", "contact")
_NOTICES = frozenset({"listed", "withdrawn"})


def _service(request: Request) -> ProductService:
    return web_context(request).service(ProductService)


def _text_fields(form: FormData | Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        value = form.get(name, "")
        values[name] = value[:2000] if isinstance(value, str) else ""
    return values


def _upload(form: FormData) -> BinaryIO | None:
    photo = form.get("photo")
    if isinstance(photo, UploadFile) and (photo.filename or photo.size):
        return photo.file
    return None


def product_json(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "price_cents": product.price_cents,
        "unit": product.unit,
        "description": product.description,
        "seller": product.seller,
        "contact": product.contact,
        "phone": product.phone or None,
        "photo": f"/products/photos/{product.photo_id}.jpg",
        "listed": product.listed,
    }


# -- tourists ----------------------------------------------------------------------------------


@pages.get("/products")
def browse(request: Request, principal: Annotated[Principal, public()]) -> Response:
    values = _text_fields(request.query_params, ("category", "min_price", "max_price", "q"))
    error: ValidationError | None = None
    try:
        query = ProductQuery.from_fields(values)
        products = _service(request).browse(query)
    except ValidationError as exc:
        error, products, query = exc, [], ProductQuery()
    t = translator(request)
    return render(
        request,
        "products/browse.html",
        principal,
        status_code=422 if error else 200,
        products=products,
        values=values,
        filtered=query.used(),
        categories=CATEGORIES,
        error_input=error.field if error else None,
        error_detail=validation_detail(t, error) if error else None,
    )


@pages.get("/products/{product_id}")
def listing(
    request: Request, product_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    product = _service(request).listing(product_id)
    return render(request, "products/listing.html", principal, product=product)


@pages.get("/products/photos/{photo_id}.jpg")
def photo(request: Request, photo_id: PhotoId, _: Annotated[Principal, public()]) -> Response:
    return Response(
        _service(request).photo(photo_id),
        media_type=CONTENT_TYPE,
        headers={"Content-Disposition": "inline"},
    )


# -- staff -------------------------------------------------------------------------------------


def _render_staff(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
) -> Response:
    done = request.query_params.get("done", "")
    t = translator(request)
    return render(
        request,
        "products/staff.html",
        principal,
        status_code=422 if error else 200,
        products=_service(request).staff_list(),
        values=values or {"contact": "phone"},
        categories=CATEGORIES,
        contact_choices=CONTACT_CHOICES,
        notice=t(f"products.notice.{done}") if done in _NOTICES else None,
        error_input=error.field if error else None,
        error_detail=validation_detail(t, error) if error else None,
    )


@pages.get("/staff/products")
def staff_products(
    request: Request, principal: Annotated[Principal, require_roles(Role.STAFF)]
) -> Response:
    return _render_staff(request, principal)


@pages.post("/staff/products", max_body_size=UPLOAD_BODY_LIMIT)
async def staff_create(
    request: Request, principal: Annotated[Principal, require_roles(Role.STAFF)]
) -> Response:
    form = await request.form()
    values = _text_fields(form, _FIELDS)
    try:
        data = ProductInput.from_fields(values)
        await run_in_threadpool(
            _service(request).create_product, data, _upload(form), actor=principal.actor
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_staff, request, principal, values=values, error=exc)
        )
    return RedirectResponse("/staff/products?done=listed", status_code=303)


@pages.post("/staff/products/{product_id}/withdraw")
def staff_withdraw(
    request: Request,
    product_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.STAFF)],
) -> Response:
    _service(request).withdraw(product_id, actor=principal.actor)
    return RedirectResponse("/staff/products?done=withdrawn", status_code=303)


# -- JSON twins --------------------------------------------------------------------------------


@api.get("/products")
def api_browse(request: Request, _: Annotated[Principal, public()]) -> dict[str, Any]:
    values = _text_fields(request.query_params, ("category", "min_price", "max_price", "q"))
    products = _service(request).browse(ProductQuery.from_fields(values))
    return {"products": [product_json(product) for product in products]}


@api.get("/products/{product_id}")
def api_listing(
    request: Request, product_id: RecordId, _: Annotated[Principal, public()]
) -> dict[str, Any]:
    return product_json(_service(request).listing(product_id))


@api.post("/products", max_body_size=UPLOAD_BODY_LIMIT, status_code=201)
async def api_create(
    request: Request, principal: Annotated[Principal, require_roles(Role.STAFF)]
) -> JSONResponse:
    form = await request.form()
    data = ProductInput.from_fields(_text_fields(form, _FIELDS))
    product = await run_in_threadpool(
        _service(request).create_product, data, _upload(form), actor=principal.actor
    )
    return JSONResponse(product_json(product), status_code=201)


@api.post("/products/{product_id}/withdraw")
def api_withdraw(
    request: Request,
    product_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.STAFF)],
) -> dict[str, Any]:
    return product_json(_service(request).withdraw(product_id, actor=principal.actor))
