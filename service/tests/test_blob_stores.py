"""The blob stores meet the blob store contract: ``folder`` on the disk, and
``postgresql`` large objects in a scratch database; and a store is chosen by name."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from farcall.errors import PluginError, UnknownPluginError
from farcall.plugins import get_plugin_manager
from farcall_service.app import select_blob_store
from farcall_service.blobs.folder import FolderBlobStore
from farcall_service.blobs.postgresql import PostgresBlobStore
from farcall_service.settings import Settings
from farcall_service.testing.blob_store_contract import BlobStoreContract


class TestFolderBlobStore(BlobStoreContract):
    name = "folder"


class TestPostgresBlobStore(BlobStoreContract):
    name = "postgresql"

    @pytest.fixture
    def settings(self, tmp_path: Path, postgresql_url: str) -> Settings:
        return Settings(home=tmp_path, db_url=postgresql_url)


def test_folder_blobs_are_owner_only_files_in_an_owner_only_folder_beside_the_database(
        tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db' / 'farcall.db'}")
    blobs = select_blob_store(get_plugin_manager(), settings)
    assert isinstance(blobs, FolderBlobStore)
    ref = blobs.put([b"secret arguments"])
    assert blobs.folder == tmp_path / "db" / "blobs"
    assert stat.S_IMODE(blobs.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((blobs.folder / ref.key).stat().st_mode) == 0o600
    assert [p.name for p in blobs.folder.iterdir()] == [ref.key]


def test_a_postgresql_database_chooses_large_objects_by_default(
        tmp_path: Path, postgresql_url: str) -> None:
    settings = Settings(home=tmp_path, db_url=postgresql_url)
    assert isinstance(select_blob_store(get_plugin_manager(), settings), PostgresBlobStore)


def test_an_unknown_blob_store_lists_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownPluginError) as caught:
        select_blob_store(get_plugin_manager(), Settings(home=tmp_path, blob_store="s4"))
    assert "'folder'" in str(caught.value) and "'postgresql'" in str(caught.value)
    assert "s4" in str(caught.value)


def test_large_objects_need_a_postgresql_database(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="must then be PostgreSQL"):
        select_blob_store(get_plugin_manager(),
                          Settings(home=tmp_path, blob_store="postgresql"))
