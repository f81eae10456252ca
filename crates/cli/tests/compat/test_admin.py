"""Admin operations with confluent-kafka (librdkafka) and kafka-python."""

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType
from kafka import KafkaAdminClient
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from conftest import manual_consumer, poll_messages, unique, wait_until


def test_confluent_admin_topics(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    name = unique("admin")
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})]
    )
    futures[name].result(timeout=30)

    # Creating it again fails with TOPIC_ALREADY_EXISTS.
    again = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    try:
        again[name].result(timeout=30)
        raise AssertionError("created twice")
    except KafkaException as e:
        assert e.args[0].name() == "TOPIC_ALREADY_EXISTS"

    md = admin.list_topics(timeout=30)
    assert name in md.topics
    assert len(md.topics[name].partitions) == 3
    assert "__consumer_offsets" not in md.topics or md.topics["__consumer_offsets"].error is None
    assert md.brokers[0].host == "127.0.0.1" and md.brokers[0].port == broker.port
    assert md.controller_id == 0

    # Describe: settings, with where they come from.
    res = ConfigResource(ResourceType.TOPIC, name)
    configs = admin.describe_configs([res])[res].result(timeout=30)
    assert configs["retention.ms"].value == "3600000"
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].is_default

    # Grow it to 5 partitions.
    admin.create_partitions([NewPartitions(name, 5)])[name].result(timeout=30)
    wait_until(lambda: len(admin.list_topics(name, timeout=30).topics[name].partitions) == 5, what="5 partitions")

    admin.delete_topics([name])[name].result(timeout=30)
    wait_until(lambda: name not in admin.list_topics(timeout=30).topics, what="topic deleted")


def test_kafka_python_admin_topics_and_groups(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        name = unique("kp-admin")
        admin.create_topics([KpNewTopic(name, num_partitions=4, replication_factor=1)])
        try:
            admin.create_topics([KpNewTopic(name, num_partitions=4, replication_factor=1)])
            raise AssertionError("created twice")
        except TopicAlreadyExistsError:
            pass
        # Kafka's brokers learn of a new topic from the controller a moment
        # after CreateTopics answers, so the reference may list it late.
        wait_until(lambda: name in admin.list_topics(), what="topic listed")
        described = admin.describe_topics([name])
        assert described[0]["name"] == name
        assert described[0]["error_code"] == 0
        assert len(described[0]["partitions"]) == 4
        assert all(p["leader_id"] == 0 for p in described[0]["partitions"])

        # A group with a committed offset shows up in list and describe.
        group = unique("kp-group")
        p = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(5):
            p.produce(name, value=f"m{i}".encode(), partition=0)
        assert p.flush(30) == 0
        c = manual_consumer(broker, group)
        c.subscribe([name])
        assert len(poll_messages(c, 5)) == 5
        c.commit(asynchronous=False)
        listed = admin.list_groups()
        # Kafka adds `group_type` (ListGroups v5); the fields both answer must agree.
        wanted = {"group_id": group, "protocol_type": "consumer", "group_state": "Stable"}
        assert any({k: g.get(k) for k in wanted} == wanted for g in listed), listed
        desc = admin.describe_groups([group])[group]
        assert desc["error"] is None
        assert desc["group_state"] == "Stable"
        assert desc["protocol_data"] in ("range", "roundrobin")
        assert len(desc["members"]) == 1
        assert desc["members"][0]["client_host"] == "/127.0.0.1"
        assigned = desc["members"][0]["member_assignment"]["assigned_partitions"]
        assert sorted(p for a in assigned for p in a["partitions"]) == [0, 1, 2, 3]
        offsets = admin.list_group_offsets({group: None})[group]
        assert sum(o.offset for tp, o in offsets.items() if tp.topic == name and o.offset > 0) == 5
        c.close()
        wait_until(lambda: admin.describe_groups([group])[group]["group_state"] == "Empty", what="group empty")
        assert admin.delete_groups([group]) == {group: "OK"}
        assert group not in [g["group_id"] for g in admin.list_groups()]

        admin.delete_topics([name])
        wait_until(lambda: name not in admin.list_topics(), what="deleted")
        try:
            admin.delete_topics([name])
            raise AssertionError("deleted twice")
        except UnknownTopicOrPartitionError:
            pass
    finally:
        admin.close()


def test_confluent_list_and_describe_groups(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    name = unique("groups")
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(timeout=30)
    group = unique("g")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([name])
    wait_until(lambda: (c.poll(0.2), len(c.assignment()) == 2)[1], what="assignment")

    listed = admin.list_consumer_groups().result(timeout=30)
    assert group in [g.group_id for g in listed.valid]
    desc = admin.describe_consumer_groups([group])[group].result(timeout=30)
    assert desc.state.name == "STABLE"
    assert len(desc.members) == 1
    assigned = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions)
    assert assigned == [0, 1]
    c.close()
    wait_until(
        lambda: admin.describe_consumer_groups([group])[group].result(timeout=30).state.name == "EMPTY",
        what="group empty after close",
    )
