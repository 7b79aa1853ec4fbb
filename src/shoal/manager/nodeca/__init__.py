"""The managers' certificate authority duties: the NodeCA service that issues and renews node
certificates (joining nodes reach it first), and the rotation of the cluster's root CA."""
