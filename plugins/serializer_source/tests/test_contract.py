from farcall.testing.serializer_contract import SerializationStrategyContract


class TestPureSourceTextInspect(SerializationStrategyContract):
    identifier = "st"
