"""The `agones` section of a fleet whose game servers Agones runs on Kubernetes.

Homeport does not start those processes: it allocates them through Agones, reads their state
from the cluster and, when asked to, sizes the Agones Fleet. Everything that says *where* the
servers live (namespace, Fleet, labels) is here; everything that says *what runs* is the
Agones Fleet manifest, which the cluster's operator owns.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from homeport.validators import printable

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
KubeName = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN)]
Namespace = Annotated[str, StringConstraints(pattern=DNS_LABEL)]
# Kubernetes label keys: an optional DNS-subdomain prefix and a name of up to 63 characters.
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
]
FLEET_LABEL = "agones.dev/fleet"


class AgonesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fleet: KubeName
    """The Agones Fleet (`agones.dev/v1`) whose GameServers this Homeport fleet hands out."""
    namespace: Namespace = "default"
    match_labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = {}
    """Labels every allocated GameServer must carry, besides `agones.dev/fleet`; an
    allocation's own `labels` are added to these."""
    scheduling: Literal["Packed", "Distributed"] = "Packed"
    """Agones' allocation strategy: Packed fills nodes first (cheaper clusters), Distributed
    spreads servers over nodes."""
    scaling: Literal["autoscaler", "replicas"] = "autoscaler"
    """Who sizes the Agones Fleet. `autoscaler` (the default): a FleetAutoscaler in the
    cluster owns `spec.replicas` and Homeport never writes it, so two controllers never fight
    over it. `replicas`: Homeport's fleet agent applies this fleet's `scaling` policy (buffer,
    min_ready, max_servers, replicas) to the Fleet's scale subresource; use no
    FleetAutoscaler on that Fleet then."""
    port_name: Annotated[str, StringConstraints(min_length=1, max_length=63)] = "default"
    """The GameServer port players connect to (Agones names a single port `default`); the
    first port when none has this name."""
    kubeconfig: (
        Annotated[str, StringConstraints(max_length=4096), AfterValidator(printable)] | None
    ) = None
    """Path of a kubeconfig file to reach the cluster; unset: the pod's service account (Homeport
    running in the cluster)."""
    context: Annotated[str, StringConstraints(max_length=253), AfterValidator(printable)] | None = (
        None
    )
    """The kubeconfig context to use; unset: its current context."""
