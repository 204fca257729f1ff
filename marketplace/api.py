"""Labs, memberships and API keys (docs/API.md, "Labs")."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import selectors, services
from marketplace.models import ApiKey, Lab, LabInvitation, Membership, Role
from marketplace.permissions import (
    LAB_MANAGE_ROLES,
    LAB_OWNER_ROLES,
    LAB_PIPELINE_ROLES,
    LAB_READ_ROLES,
    IsPerson,
    lab_for_caller,
    request_person,
)


class LabSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="caller_role", read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Lab
        fields = ["id", "name", "created_at", "role", "member_count"]


class LabCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, trim_whitespace=True)


class MemberAddSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "name", "role", "status", "created_at"]

    def get_status(self, obj: Membership) -> str:
        return "active"


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = LabInvitation
        fields = ["id", "email", "role", "status", "created_at"]

    def get_status(self, obj: LabInvitation) -> str:
        return "invited"


class MemberAddedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.CharField()
    status = serializers.ChoiceField(choices=["active", "invited"])
    membership_id = serializers.IntegerField(allow_null=True)
    invitation_id = serializers.IntegerField(allow_null=True)


class MembersSerializer(serializers.Serializer):
    members = MemberSerializer(many=True)
    invitations = InvitationSerializer(many=True)


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, trim_whitespace=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class LabListCreateView(GenericAPIView):
    serializer_class = LabSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Lab.objects.none()
        return selectors.lab_list_for_caller(caller=self.request.user)

    @extend_schema(responses=LabSerializer(many=True), summary="Labs the caller belongs to")
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LabSerializer(page, many=True).data)

    @extend_schema(
        request=LabCreateSerializer, responses={201: LabSerializer}, summary="Create a lab"
    )
    def post(self, request: Request) -> Response:
        if not IsPerson().has_permission(request, self):
            self.permission_denied(request, message=IsPerson.message)
        payload = LabCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        lab = services.lab_create(
            name=payload.validated_data["name"], created_by=request_person(request)
        )
        lab = selectors.lab_list_for_caller(caller=request.user).get(pk=lab.pk)
        return Response(LabSerializer(lab).data, status=status.HTTP_201_CREATED)


class LabDetailView(APIView):
    @extend_schema(responses=LabSerializer, summary="One lab")
    def get(self, request: Request, lab_id: int) -> Response:
        lab_for_caller(request=request, lab_id=lab_id, roles=LAB_PIPELINE_ROLES)
        lab = selectors.lab_list_for_caller(caller=request.user).get(pk=lab_id)
        return Response(LabSerializer(lab).data)


class LabMembersView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=MembersSerializer, summary="Members and open invitations")
    def get(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_READ_ROLES)
        body = {
            "members": selectors.lab_members(lab=lab),
            "invitations": selectors.lab_open_invitations(lab=lab),
        }
        return Response(MembersSerializer(body).data)

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: MemberAddedSerializer},
        summary="Add a member by email (owner)",
        description=(
            "A person whose account has this email verified becomes a member at once "
            "(`status: active`); otherwise an invitation is kept until that email is verified "
            "(`status: invited`)."
        ),
    )
    def post(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_OWNER_ROLES)
        payload = MemberAddSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.lab_member_add(
            lab=lab, added_by=request_person(request), **payload.validated_data
        )
        is_member = isinstance(result, Membership)
        data = {
            "email": payload.validated_data["email"].lower(),
            "role": result.role,
            "status": "active" if is_member else "invited",
            "membership_id": result.pk if is_member else None,
            "invitation_id": None if is_member else result.pk,
        }
        return Response(MemberAddedSerializer(data).data, status=status.HTTP_201_CREATED)


class LabMemberDetailView(APIView):
    permission_classes = [IsPerson]

    def _membership(self, request: Request, lab_id: int, membership_id: int) -> Membership:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_OWNER_ROLES)
        return get_object_or_404(Membership, pk=membership_id, lab=lab)

    @extend_schema(
        request=MemberRoleSerializer, responses=MemberSerializer, summary="Change a role (owner)"
    )
    def patch(self, request: Request, lab_id: int, membership_id: int) -> Response:
        membership = self._membership(request, lab_id, membership_id)
        payload = MemberRoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.lab_member_change_role(
            membership=membership, role=payload.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member (owner)")
    def delete(self, request: Request, lab_id: int, membership_id: int) -> Response:
        services.lab_member_remove(membership=self._membership(request, lab_id, membership_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabApiKeysView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=ApiKeySerializer(many=True), summary="The lab's API keys (no secrets)")
    def get(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
        return Response(ApiKeySerializer(selectors.lab_api_keys(lab=lab), many=True).data)

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        summary="Create an API key (owner, manager); the key is shown once",
    )
    def post(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
        payload = ApiKeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        api_key, raw_key = services.api_key_create(
            lab=lab, name=payload.validated_data["name"], created_by=request_person(request)
        )
        data = ApiKeySerializer(api_key).data
        data["key"] = raw_key
        return Response(data, status=status.HTTP_201_CREATED)


class LabApiKeyDetailView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses={204: None}, summary="Revoke an API key (owner, manager)")
    def delete(self, request: Request, lab_id: int, key_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
        api_key = get_object_or_404(ApiKey, pk=key_id, lab=lab)
        services.api_key_revoke(api_key=api_key, revoked_by=request_person(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
