"""A service's endpoint as the managers allocate it: its published ports and its virtual IPs."""

from shoal.api.objects import Endpoint, Service
from shoal.api.specs import EndpointSpec
from shoal.manager.allocator.networks import allocate_vips
from shoal.manager.allocator.ports import allocate_ports
from shoal.store import ReadTx


def allocate_endpoint(tx: ReadTx, service: Service) -> None:
    """Set ``service.Endpoint`` (Spec, Ports and VirtualIPs, as `service inspect` shows
    them), allocated against everything else in the transaction. Call it on the object about
    to be created or updated, inside that transaction. Raises InvalidArgument (Docker's
    wording) if a published port is taken or a network has no address left."""
    ports = allocate_ports(tx, service)
    vips = allocate_vips(tx, service)
    spec = service.Spec.EndpointSpec
    service.Endpoint = Endpoint(
        Spec=spec.model_copy(deep=True) if spec is not None else EndpointSpec(),
        Ports=ports or None,
        VirtualIPs=vips,
    )
