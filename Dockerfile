# cowherd as PID 1 of an image with nothing else in it: the static cowherd and cowctl, an
# /etc/passwd and /etc/group for pool users, and your cowherd.yaml. The filesystem is built by
# packaging/oci-bundle.sh, the same script the container tests (tests/container) run under
# runc, so this is the image they test:
#
#   make static
#   packaging/oci-bundle.sh -c cowherd.yaml build/image
#   docker build -t my/app .
#
# Your workers go into build/image/rootfs before `docker build`, or in a COPY of your own
# after the one below; they need their own libraries there, or to be static too.
FROM scratch
COPY build/image/rootfs/ /
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s CMD ["/usr/bin/cowctl", "health"]
ENTRYPOINT ["/usr/bin/cowherd", "-c", "/etc/cowherd/cowherd.yaml"]
