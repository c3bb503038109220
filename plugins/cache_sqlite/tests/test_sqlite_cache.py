from farcall.plugins import get_plugin_manager


def make(tmp_path, service="http://a"):
    record = get_plugin_manager().get_result_cache("sqlite")
    return record.factory({"cache_path": str(tmp_path / "r.db"), "base_url": service})


def test_documents_survive_a_new_cache_object(tmp_path):
    doc = {"task_id": "t1", "status": "success", "result": "11\n[1]", "completion_t": "1.5"}
    make(tmp_path).put("t1", doc)
    assert make(tmp_path).get("t1") == doc
    assert make(tmp_path).get("t2") is None


def test_entries_are_per_service_and_clear_only_its_own(tmp_path):
    a, b = make(tmp_path, "http://a"), make(tmp_path, "http://b")
    a.put("t", {"status": "success"})
    b.put("t", {"status": "failed"})
    assert a.get("t") == {"status": "success"}
    a.clear()
    assert a.get("t") is None and b.get("t") == {"status": "failed"}
