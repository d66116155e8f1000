"""The Kubernetes platform: manifests for the same components, applied with the official client.

Nothing here may import the `kubernetes` client at package import time: the
component images import `scalelab.platform.kubernetes.podwrap`, and the base
install has no `kubernetes` package. Modules that need it import it inside.
"""
