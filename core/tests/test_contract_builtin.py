from farcall.testing.serializer_contract import SerializationStrategyContract


class TestJSONData(SerializationStrategyContract):
    identifier = "11"


class TestAllDataStrategies(SerializationStrategyContract):
    identifier = "13"


class TestAllCodeStrategies(SerializationStrategyContract):
    identifier = "12"
