"""The contract of :class:`~farcall_service.storage.interface.IdentityStore` and
:class:`~farcall_service.storage.interface.OAuthStore`."""

from __future__ import annotations

import time

import pytest

from farcall_service.storage.interface import (
    AuthCode,
    DeviceGrant,
    Endpoint,
    Holdings,
    IssuedToken,
    NewTask,
    OAuthClient,
    Store,
    TaskOptions,
)
from farcall_service.testing.store_fixtures import StoreFixtures, at_once, new_id, seed


class IdentityStoreContract(StoreFixtures):
    """Users, groups, memberships, static tokens and passwords."""

    def test_a_user_is_found_by_id_and_by_name(self, store: Store) -> None:
        ada = store.create_user("ada")
        assert ada.name == "ada" and ada.id
        assert store.get_user(ada.id) == ada
        assert store.get_user("ada") == ada
        assert store.get_user("nobody") is None
        assert store.create_user("bob").id != ada.id

    def test_a_taken_user_name_raises_and_the_store_goes_on(self, store: Store) -> None:
        ada = store.create_user("ada")
        with pytest.raises(Exception):  # noqa: B017 (the store's own error)
            store.create_user("ada")
        assert store.get_user("ada") == ada
        assert store.create_user("bob").name == "bob"

    def test_users_are_listed_oldest_first_without_removed_ones(self, store: Store) -> None:
        assert store.list_users() == []
        ada = store.create_user("ada")
        bob = store.create_user("bob")
        cy = store.create_user("cy")
        store.set_password_hash(bob.id, "scrypt$1")
        store.remove_user(cy.id, time.time(), "removed")
        listed = store.list_users()
        assert [(u.id, u.name, u.has_password) for u in listed] == [
            (ada.id, "ada", False), (bob.id, "bob", True)]
        assert listed[0].created_at <= listed[1].created_at

    def test_a_static_token_authenticates_as_its_user(self, store: Store) -> None:
        ada = store.create_user("ada")
        store.add_token(ada.id, "a" * 64)
        store.add_token(ada.id, "b" * 64)
        assert store.user_for_token("a" * 64) == ada
        assert store.user_for_token("b" * 64) == ada
        assert store.user_for_token("c" * 64) is None

    def test_static_tokens_are_listed_and_deleted(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        store.add_token(ada.id, "a" * 64)
        store.add_token(bob.id, "b" * 64)
        store.add_token(ada.id, "c" * 64)
        mine = store.list_tokens(ada.id)
        assert [(k.token_hash, k.user_id, k.user_name) for k in mine] == [
            ("a" * 64, ada.id, "ada"), ("c" * 64, ada.id, "ada")]
        assert all(k.created_at > 0 for k in mine)
        assert [k.token_hash for k in store.list_tokens()] == ["a" * 64, "b" * 64, "c" * 64]
        assert store.list_tokens(new_id()) == []
        assert store.delete_token("a" * 64)
        assert not store.delete_token("a" * 64)  # once
        assert store.user_for_token("a" * 64) is None
        assert store.user_for_token("c" * 64) == ada
        assert [k.token_hash for k in store.list_tokens()] == ["b" * 64, "c" * 64]

    def test_a_password_hash_is_set_replaced_and_cleared(self, store: Store) -> None:
        ada = store.create_user("ada")
        assert store.get_password_hash(ada.id) is None
        store.set_password_hash(ada.id, "scrypt$1")
        assert store.get_password_hash(ada.id) == "scrypt$1"
        store.set_password_hash(ada.id, "scrypt$2")
        assert store.get_password_hash(ada.id) == "scrypt$2"
        store.set_password_hash(ada.id, None)
        assert store.get_password_hash(ada.id) is None
        assert store.get_password_hash(new_id()) is None

    def test_groups_and_their_members(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        lab, team = store.create_group("lab"), store.create_group("team")
        assert store.get_group(lab.id) == lab
        assert store.get_group("team") == team
        assert store.get_group("nobody") is None
        store.add_member(lab.id, ada.id)
        store.add_member(lab.id, ada.id)  # twice changes nothing
        store.add_member(team.id, ada.id)
        store.add_member(team.id, bob.id)
        assert store.groups_of(ada.id) == frozenset({lab.id, team.id})
        assert store.groups_of(bob.id) == frozenset({team.id})
        assert store.groups_of(store.create_user("cy").id) == frozenset()
        assert store.remove_member(team.id, ada.id)
        assert not store.remove_member(team.id, ada.id)  # once
        assert not store.remove_member(lab.id, bob.id)  # never a member
        assert store.groups_of(ada.id) == frozenset({lab.id})
        assert store.groups_of(bob.id) == frozenset({team.id})

    def test_a_removed_user_is_found_by_nothing(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        lab = store.create_group("lab")
        store.add_member(lab.id, ada.id)
        store.add_member(lab.id, bob.id)
        store.add_token(ada.id, "a" * 64)
        store.add_token(bob.id, "b" * 64)
        store.set_password_hash(ada.id, "scrypt$1")
        assert store.holdings(ada.id) == Holdings()
        store.remove_user(ada.id, time.time(), "removed")
        assert store.get_user("ada") is None and store.get_user(ada.id) is None
        assert store.user_for_token("a" * 64) is None
        assert store.list_tokens(ada.id) == []
        assert store.get_password_hash(ada.id) is None
        assert store.groups_of(ada.id) == frozenset()
        with pytest.raises(Exception):  # noqa: B017 (the name stays taken)
            store.create_user("ada")
        assert store.get_user("bob") == bob  # the others are untouched
        assert store.user_for_token("b" * 64) == bob
        assert store.groups_of(bob.id) == frozenset({lab.id})

    def test_removing_a_user_ends_what_they_hold(self, store: Store) -> None:
        now = time.time()
        ada, bob = seed(store, "ada", now), seed(store, "bob", now)
        public = Endpoint(new_id(), ada.user.id, "ada's public", public=True, created_at=now)
        store.save_endpoint(public)
        robot = OAuthClient(new_id(), ada.user.id, new_id(), "robot", "s" * 64)
        store.create_oauth_client(robot, f"{robot.id}@clients")
        robot_ep = Endpoint(new_id(), robot.principal_id, "robot's", created_at=now)
        store.save_endpoint(robot_ep)
        mine_on_bob = ada.submit(1, endpoint=bob.endpoint.id)
        bob_on_ada = [NewTask(new_id(), bob.function.id, "p")]
        store.submit(bob.user.id, new_id(), [(public.id, bob_on_ada[0])], TaskOptions(), now)
        bob_own = bob.submit(1)
        access = IssuedToken(new_id(), "access", ada.user.id, "native", "openid", "farcall",
                             "g", now + 60)
        robots = IssuedToken(new_id(), "access", robot.principal_id, robot.id, "openid",
                             "farcall", "h", now + 60)
        store.save_oauth_tokens([access, robots])
        assert store.holdings(ada.user.id) == Holdings(
            functions=1, endpoints=3, unfinished_tasks=1, clients=1)
        assert store.holdings(bob.user.id) == Holdings(
            functions=1, endpoints=1, unfinished_tasks=2, clients=0)

        store.remove_user(ada.user.id, now + 1, "the owner was removed")
        assert store.holdings(ada.user.id) == Holdings()
        assert store.get_function(ada.function.id) is None
        for endpoint in (ada.endpoint, public, robot_ep):
            assert store.get_endpoint(endpoint.id) is None
        for task_id in (*mine_on_bob, bob_on_ada[0].id):
            task = store.get_task(task_id)
            assert task is not None
            assert (task.status, task.exception, task.completion_t) == (
                "failed", "the owner was removed", now + 1)
        assert store.get_task(bob_own[0]).status == "waiting-for-ep"  # type: ignore[union-attr]
        assert store.get_oauth_client(robot.id) is None
        assert store.get_user(robot.principal_id) is None
        for token in (access, robots):
            assert store.get_oauth_token(token.token_hash).revoked  # type: ignore[union-attr]
            assert store.user_for_oauth_token(token.token_hash) is None
        assert store.get_function(bob.function.id) is not None
        assert store.get_endpoint(bob.endpoint.id) is not None


class OAuthStoreContract(StoreFixtures):
    """Clients, authorization codes and issued tokens; replays cannot both succeed."""

    @staticmethod
    def client(store: Store, owner: str, name: str = "robot") -> OAuthClient:
        client = OAuthClient(new_id(), owner, new_id(), name, "s" * 64)
        store.create_oauth_client(client, f"{client.id}@clients")
        return client

    @staticmethod
    def token(user_id: str, client_id: str, kind: str = "access", grant: str = "g",
              hash_: str | None = None) -> IssuedToken:
        return IssuedToken(hash_ or new_id(), kind, user_id, client_id, "openid",
                           "farcall", grant, time.time() + 60)

    def test_a_client_is_its_own_principal(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        found = store.get_oauth_client(client.id)
        assert found is not None
        assert (found.id, found.owner_id, found.principal_id, found.name, found.secret_hash) == (
            client.id, ada.id, client.principal_id, "robot", "s" * 64)
        principal = store.get_user(client.principal_id)
        assert principal is not None and principal.name == f"{client.id}@clients"
        assert store.get_password_hash(client.principal_id) is None
        assert store.get_oauth_client(new_id()) is None

    def test_clients_are_listed_by_owner_oldest_first(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        first = self.client(store, ada.id, "first")
        self.client(store, bob.id, "bob's")
        second = self.client(store, ada.id, "second")
        assert [c.id for c in store.list_oauth_clients(ada.id)] == [first.id, second.id]
        assert store.list_oauth_clients(new_id()) == []

    def test_deleting_a_client_revokes_its_tokens(self, store: Store) -> None:
        ada = store.create_user("ada")
        client, other = self.client(store, ada.id), self.client(store, ada.id, "other")
        mine, kept = self.token(ada.id, client.id), self.token(ada.id, other.id)
        store.save_oauth_tokens([mine, kept])
        store.delete_oauth_client(client.id)
        assert store.get_oauth_client(client.id) is None
        assert [c.id for c in store.list_oauth_clients(ada.id)] == [other.id]
        assert store.get_oauth_token(mine.token_hash).revoked  # type: ignore[union-attr]
        assert not store.get_oauth_token(kept.token_hash).revoked  # type: ignore[union-attr]

    def test_a_code_is_redeemed_once(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        code = AuthCode("c" * 64, client.id, ada.id, "http://localhost/cb", "openid",
                        "challenge", True, "grant-1", time.time() + 60)
        store.save_auth_code(code)
        assert store.redeem_auth_code(code.code_hash) == code
        again = store.redeem_auth_code(code.code_hash)
        assert again is not None and again.used
        assert store.redeem_auth_code("d" * 64) is None

    def test_concurrent_redemptions_of_a_code_find_it_unused_once(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        for round_ in range(5):  # a race shows only now and then
            code = AuthCode(f"{round_}" * 64, client.id, ada.id, "http://localhost/cb",
                            "openid", None, False, "g", time.time() + 60)
            store.save_auth_code(code)
            redeemed = at_once(4, lambda: store.redeem_auth_code(code.code_hash))  # noqa: B023
            assert sorted(c.used for c in redeemed if c) == [False, True, True, True]

    def test_issued_tokens_are_found_with_their_user(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        access = self.token(ada.id, client.id)
        store.save_oauth_tokens([access, self.token(ada.id, client.id, "refresh")])
        store.save_oauth_tokens([])
        found = store.get_oauth_token(access.token_hash)
        assert found is not None
        assert (found.kind, found.user_id, found.client_id, found.scope, found.resource_server,
                found.grant_id, found.expires_at, found.revoked) == (
            "access", ada.id, client.id, "openid", "farcall", "g", access.expires_at, False)
        assert store.user_for_oauth_token(access.token_hash) == (found, ada)
        assert store.get_oauth_token(new_id()) is None
        assert store.user_for_oauth_token(new_id()) is None

    def test_a_refresh_token_is_spent_once(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        access, refresh = self.token(ada.id, client.id), self.token(ada.id, client.id, "refresh")
        store.save_oauth_tokens([access, refresh])
        assert store.spend_refresh_token(access.token_hash) is None  # not a refresh token
        spent = store.spend_refresh_token(refresh.token_hash)
        assert spent is not None and not spent.revoked
        again = store.spend_refresh_token(refresh.token_hash)
        assert again is not None and again.revoked
        assert store.spend_refresh_token(new_id()) is None

    def test_concurrent_spends_of_a_refresh_token_find_it_live_once(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        for _round in range(5):  # a race shows only now and then
            token = self.token(ada.id, client.id, "refresh")
            store.save_oauth_tokens([token])
            spent = at_once(4, lambda: store.spend_refresh_token(token.token_hash))  # noqa: B023
            assert sorted(t.revoked for t in spent if t) == [False, True, True, True]

    def test_revoking_a_token_or_a_whole_grant(self, store: Store) -> None:
        ada = store.create_user("ada")
        client = self.client(store, ada.id)
        one, two = self.token(ada.id, client.id), self.token(ada.id, client.id, "refresh")
        other = self.token(ada.id, client.id, grant="h")
        store.save_oauth_tokens([one, two, other])
        store.revoke_oauth_token(other.token_hash)
        store.revoke_oauth_token(new_id())  # unknown: nothing happens
        assert store.get_oauth_token(other.token_hash).revoked  # type: ignore[union-attr]
        assert sorted(store.revoke_grant("g")) == sorted([one.token_hash, two.token_hash])
        for token in (one, two):
            assert store.get_oauth_token(token.token_hash).revoked  # type: ignore[union-attr]
        assert store.revoke_grant("nothing") == []

    def test_a_password_reset_ends_the_user_s_logins(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        client = self.client(store, ada.id)
        one, two = self.token(ada.id, client.id), self.token(ada.id, "native", "refresh", "h")
        theirs = self.token(bob.id, client.id)
        store.save_oauth_tokens([one, two, theirs])
        store.revoke_oauth_token(one.token_hash)
        code = AuthCode("c" * 64, "native", ada.id, "http://localhost/cb", "openid",
                        None, True, "k", time.time() + 60)
        store.save_auth_code(code)
        # Every token of hers, by any client, not yet revoked.
        assert store.reset_password(ada.id, "scrypt$2") == [two.token_hash]
        assert store.get_password_hash(ada.id) == "scrypt$2"
        for token in (one, two):
            assert store.get_oauth_token(token.token_hash).revoked  # type: ignore[union-attr]
        assert not store.get_oauth_token(theirs.token_hash).revoked  # type: ignore[union-attr]
        assert store.redeem_auth_code(code.code_hash) is None  # forgotten
        assert store.reset_password(ada.id, None) == []
        assert store.get_password_hash(ada.id) is None
        assert store.reset_password(new_id(), "x") == []

    # -- device grants (RFC 8628) -----------------------------------------------------------

    @staticmethod
    def device_grant(client_id: str = "native", ttl: float = 60.0,
                     user_code_hash: str | None = None) -> DeviceGrant:
        return DeviceGrant(new_id(), user_code_hash or new_id(), client_id, "openid", new_id(),
                           time.time() + ttl, 5.0)

    def test_a_device_grant_is_found_by_its_user_code_and_decided_once(
            self, store: Store) -> None:
        ada = store.create_user("ada")
        grant = self.device_grant()
        assert store.save_device_grant(grant)
        assert store.find_device_grant(grant.user_code_hash) == grant
        assert store.find_device_grant(new_id()) is None
        approved = store.decide_device_grant(grant.user_code_hash, ada.id, True, time.time())
        assert approved is not None
        assert (approved.status, approved.user_id) == ("approved", ada.id)
        assert store.find_device_grant(grant.user_code_hash) == approved
        assert store.decide_device_grant(grant.user_code_hash, ada.id, False, time.time()) is None
        denied = self.device_grant()
        store.save_device_grant(denied)
        after = store.decide_device_grant(denied.user_code_hash, ada.id, False, time.time())
        assert after is not None and after.status == "denied"
        assert store.decide_device_grant(new_id(), ada.id, True, time.time()) is None

    def test_a_user_code_is_kept_for_one_grant_only(self, store: Store) -> None:
        first = self.device_grant()
        assert store.save_device_grant(first)
        second = self.device_grant(user_code_hash=first.user_code_hash)
        assert not store.save_device_grant(second)
        assert store.find_device_grant(first.user_code_hash) == first

    def test_polls_pace_the_client_and_give_an_approved_grant_once(self, store: Store) -> None:
        ada = store.create_user("ada")
        grant = self.device_grant()
        store.save_device_grant(grant)
        now = time.time()
        first = store.poll_device_grant(grant.device_code_hash, "native", now)
        assert first == grant  # as it was: never polled
        second = store.poll_device_grant(grant.device_code_hash, "native", now + 1)
        assert second is not None and second.last_polled_at == now and second.interval == 5.0
        third = store.poll_device_grant(grant.device_code_hash, "native", now + 7)
        assert third is not None and third.interval == 10.0  # the second came 1 s after
        # Another client's poll changes nothing.
        other = store.poll_device_grant(grant.device_code_hash, "someone", now + 8)
        assert other is not None and other.last_polled_at == now + 7
        assert store.poll_device_grant(new_id(), "native", now) is None
        store.decide_device_grant(grant.user_code_hash, ada.id, True, now)
        polls = at_once(4, lambda: store.poll_device_grant(grant.device_code_hash, "native",
                                                           now + 30))
        assert sorted(p.used for p in polls if p) == [False, True, True, True]
        assert all(p is not None and p.status == "approved" and p.user_id == ada.id
                   for p in polls)

    def test_expired_device_grants_are_not_decided_and_are_deleted(self, store: Store) -> None:
        ada = store.create_user("ada")
        old, live = self.device_grant(ttl=-10), self.device_grant()
        store.save_device_grant(old)
        store.save_device_grant(live)
        assert store.decide_device_grant(old.user_code_hash, ada.id, True, time.time()) is None
        assert store.delete_device_grants(time.time()) == 1
        assert store.find_device_grant(old.user_code_hash) is None
        assert store.find_device_grant(live.user_code_hash) == live

    def test_a_password_reset_forgets_the_device_grants_the_user_decided(
            self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        hers, his, pending = self.device_grant(), self.device_grant(), self.device_grant()
        for grant in (hers, his, pending):
            store.save_device_grant(grant)
        store.decide_device_grant(hers.user_code_hash, ada.id, True, time.time())
        store.decide_device_grant(his.user_code_hash, bob.id, True, time.time())
        store.reset_password(ada.id, "scrypt$2")
        assert store.find_device_grant(hers.user_code_hash) is None
        assert store.find_device_grant(his.user_code_hash) is not None
        assert store.find_device_grant(pending.user_code_hash) is not None
