from farcall.testing.serializer_contract import JSON_SAFE_SAMPLES, SerializationStrategyContract


class TestCloudpickleData(SerializationStrategyContract):
    identifier = "c0"
    data_samples = [*JSON_SAFE_SAMPLES, (1, 2), {1, 2}, b"\x00\xff"]


class TestCloudpickleCode(SerializationStrategyContract):
    identifier = "c1"
