"""Which filesystem holds a path (is /dev/shm a tmpfs), from /proc/self/mounts' text."""

from shoal.agent.exec.files_root import filesystem_type

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid 0 0
/dev/vdb /run/data ext4 rw 0 0
tmpfs /mnt/with\\040space tmpfs rw 0 0
"""


def test_the_deepest_mount_point_above_a_path_decides():
    assert filesystem_type("/dev/shm", MOUNTS) == "tmpfs"
    assert filesystem_type("/dev/shm/shoal-n1", MOUNTS) == "tmpfs"
    assert filesystem_type("/dev/shmx", MOUNTS) == "ext4"  # a sibling, not below
    assert filesystem_type("/run/data/x", MOUNTS) == "ext4"
    assert filesystem_type("/run/shoal", MOUNTS) == "tmpfs"
    assert filesystem_type("/mnt/with space/x", MOUNTS) == "tmpfs"
    assert filesystem_type("/var/lib", MOUNTS) == "ext4"


def test_a_later_mount_on_the_same_point_wins():
    stacked = MOUNTS + "/dev/vdc /dev/shm ext4 rw 0 0\n"
    assert filesystem_type("/dev/shm/x", stacked) == "ext4"
