from farcall.testing.serializer_contract import JSON_SAFE_SAMPLES, SerializationStrategyContract

# dill also round-trips what JSON cannot: tuples, sets, bytes, complex numbers.
DILL_SAMPLES = [*JSON_SAFE_SAMPLES, (1, 2), {1, 2}, frozenset("ab"), b"\x00\xff", 1 + 2j]


class TestDillDataBase64(SerializationStrategyContract):
    identifier = "00"
    data_samples = DILL_SAMPLES


class TestDillCode(SerializationStrategyContract):
    identifier = "01"


class TestPureSourceDill(SerializationStrategyContract):
    identifier = "sd"


class TestDillCodeSource(SerializationStrategyContract):
    identifier = "04"


class TestCombinedCode(SerializationStrategyContract):
    identifier = "10"
