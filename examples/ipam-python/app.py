"""The component: componentize-py exports the class named after the
interface (`handler` -> `Handler`) from this module."""

from lowest_free import LowestFree
from wasmcni_sdk.component import ipam

Handler = ipam.handler(LowestFree())
